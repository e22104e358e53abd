"""Round trips of every type and dtype, bit for bit."""

from __future__ import annotations

import struct

import ml_dtypes
import numpy as np
import pytest

import viacodec
from viacodec import Map, Object

from conftest import same

ALL_DTYPES = [
    np.bool_,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    ml_dtypes.bfloat16,
    np.float32,
    np.float64,
    np.complex64,
    np.complex128,
    ml_dtypes.float8_e4m3fn,
    ml_dtypes.float8_e5m2,
]


def rt(v, **kw):
    return viacodec.loads(viacodec.dumps(v, **kw), **kw)


def f64(hexbits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(hexbits))[0]


def random_array(dtype, shape, seed=0) -> np.ndarray:
    """An array of dtype whose bytes are random (any bit pattern, NaNs
    with payloads included), except bool, which holds 0 and 1."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raw = rng.integers(0, 256, size=n * dt.itemsize, dtype=np.uint8)
    return raw.view(dt).reshape(shape)


SCALARS = [
    None,
    True,
    False,
    0,
    1,
    23,
    24,
    255,
    256,
    65535,
    65536,
    2**32 - 1,
    2**32,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    2**200,
    -1,
    -24,
    -25,
    -(2**63),
    -(2**64),
    -(2**64) - 1,
    -(2**300),
    0.0,
    -0.0,
    1.5,
    float("inf"),
    float("-inf"),
    f64("7ff8000000000000"),  # quiet NaN
    f64("7ff0000000000001"),  # signalling NaN with a payload
    f64("fff800000000abcd"),  # negative NaN with a payload
    5e-324,  # smallest subnormal
    np.float16(1.5),
    np.float16(-0.0),
    np.uint16(0x7C01).view(np.float16),  # float16 NaN payload
    np.uint16(0x0001).view(np.float16),  # float16 subnormal
    np.float32(2.5),
    np.float32(-0.0),
    np.uint32(0x7F800001).view(np.float32),  # float32 signalling NaN
    np.uint32(0xFFC00123).view(np.float32),
    "",
    "text",
    "ünïcode ✓ 𝄞",
    "x" * 1000,
    b"",
    b"\x00\x01\xff",
    b"y" * 100_000,  # long enough to travel as a slot
]


@pytest.mark.parametrize("v", SCALARS, ids=lambda v: type(v).__name__ + ":" + repr(v)[:30])
def test_scalar_round_trip(v):
    assert same(rt(v), v)
    assert same(rt([v, {"k": v}]), [v, {"k": v}])


def test_containers():
    v = {
        "list": [1, [2, [3, []]], {}],
        "dict": {"b": 1, "a": 2, "": 3, "aa": 4},
        "empty": {},
        "nested": {"x": {"y": {"z": [None]}}},
    }
    assert same(rt(v), v)
    # tuple encodes as a list
    assert same(rt((1, (2, 3))), [1, [2, 3]])


def test_bytes_like_decode_as_bytes():
    for v in (bytearray(b"abc"), memoryview(b"abc"), bytearray(200_000), memoryview(bytes(range(256)) * 1000)):
        got = rt(v)
        assert type(got) is bytes and got == bytes(v)
    mv = memoryview(np.arange(12, dtype=np.int32).reshape(3, 4))
    assert rt(mv) == mv.tobytes()
    strided = memoryview(bytes(range(100)))[::3]
    assert rt(strided) == strided.tobytes()


def test_numpy_scalars():
    cases = [
        (np.bool_(True), True),
        (np.int8(-5), -5),
        (np.int16(-300), -300),
        (np.int32(7), 7),
        (np.int64(-(2**63)), -(2**63)),
        (np.uint8(255), 255),
        (np.uint16(65535), 65535),
        (np.uint32(2**32 - 1), 2**32 - 1),
        (np.uint64(2**64 - 1), 2**64 - 1),
        (np.float64(-0.0), -0.0),
        (np.str_("s"), "s"),
        (np.bytes_(b"b"), b"b"),
    ]
    for v, want in cases:
        assert same(rt(v), want), v
    # no CBOR scalar: a 0-d array of the dtype
    for v in (np.complex64(1 + 2j), np.complex128(-1j), ml_dtypes.bfloat16(1.5), ml_dtypes.float8_e4m3fn(2), ml_dtypes.float8_e5m2(-4)):
        got = rt(v)
        assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == v.dtype
        assert got.tobytes() == np.asarray(v).tobytes()
    got = rt(3 + 4j)
    assert got.dtype == np.complex128 and got[()] == 3 + 4j


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 5), (2, 0, 4), (2, 3, 4, 5)], ids=str)
def test_array_dtypes_and_shapes(dtype, shape):
    a = random_array(dtype, shape, seed=len(shape))
    got = rt(a)
    assert got.dtype == a.dtype and got.shape == a.shape
    assert got.tobytes() == a.tobytes()
    assert got.flags.writeable and got.flags.c_contiguous


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_fortran_order(dtype):
    a = np.asfortranarray(random_array(dtype, (4, 3, 2)))
    assert not a.flags.c_contiguous
    msg = viacodec.dumps(a)
    assert b"\xd9\x04\x10" in msg[:16]  # tag 1040: column-major, no copy
    got = viacodec.loads(msg)
    assert got.flags.f_contiguous and not got.flags.c_contiguous
    assert got.dtype == a.dtype and got.shape == a.shape
    assert got.tobytes(order="A") == a.tobytes(order="A")
    # Same logical array in C order: equal elements, different bytes on the wire.
    c = np.ascontiguousarray(a)
    assert viacodec.dumps(c) != msg
    assert rt(c).tobytes() == c.tobytes()


def test_ambiguous_order_is_row_major():
    # Arrays whose layout is the same in both orders are written with tag 40,
    # whatever flags numpy gives them (docs/wire-format.md §3.3).
    for a in (np.asfortranarray(np.arange(5.0)), np.ones((1, 4, 1), order="F"), np.zeros((0, 3), order="F")):
        assert viacodec.dumps(a) == viacodec.dumps(np.ascontiguousarray(a))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_non_contiguous(dtype):
    base = random_array(dtype, (6, 8))
    for a in (base[::2, 1::3], base.T[::-1], base[:, 3], base[::-1]):
        got = rt(a)
        assert got.shape == a.shape and got.dtype == a.dtype
        assert got.tobytes() == np.ascontiguousarray(a).tobytes()


@pytest.mark.parametrize("code", ["i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"])
def test_big_endian(code):
    le = random_array(np.dtype("<" + code), (3, 4))
    be = le.astype(">" + code)
    assert viacodec.dumps(be) == viacodec.dumps(le)
    got = rt(be)
    assert got.dtype == np.dtype("<" + code) and got.tobytes() == le.tobytes()
    # Fortran order and big-endian together.
    bef = np.asfortranarray(be)
    assert viacodec.dumps(bef) == viacodec.dumps(np.asfortranarray(le))


def test_nan_payloads_in_arrays():
    bits = np.array([0x7FF0000000000001, 0xFFF8000000000ABC, 0x8000000000000000, 0x7FF8000000000000], dtype=np.uint64)
    a = bits.view(np.float64)
    assert rt(a).view(np.uint64).tolist() == bits.tolist()
    h = np.array([0x7C01, 0xFE00, 0x8000, 0x0001], dtype=np.uint16).view(np.float16)
    assert rt(h).view(np.uint16).tolist() == [0x7C01, 0xFE00, 0x8000, 0x0001]


def test_same_array_twice_and_views():
    a = np.arange(10, dtype=np.int32)
    got = rt({"a": a, "b": a, "c": [a[2:5], a]})
    assert same(got["a"], a) and same(got["b"], a) and same(got["c"][1], a)
    assert same(got["c"][0], a[2:5].copy())
    assert got["a"] is not got["b"]  # independent arrays


def test_decoded_arrays_do_not_alias_the_message():
    a = np.arange(1000, dtype=np.float64)
    msg = bytearray(viacodec.dumps({"a": a, "b": b"z" * 100_000}))
    got = viacodec.loads(msg)
    msg[:] = bytes(len(msg))
    assert same(got["a"], a) and got["b"] == b"z" * 100_000
    got["a"][0] = 42.0  # writable


def test_maps():
    v = {1: "a", -1: "b", b"k": "c", False: "d", None: "e", "s": "f", 2**70: "g"}
    got = rt(v)
    assert isinstance(got, Map)
    assert dict(got) == v
    # A Map keeps keys a dict cannot hold apart.
    m = Map([(1, "int"), (True, "bool"), (b"1", "bytes"), ("1", "text")])
    got = rt(m)
    assert isinstance(got, Map) and len(got) == 4
    assert sorted((type(k).__name__, v) for k, v in got) == sorted((type(k).__name__, v) for k, v in m)
    assert rt(Map()) == {}  # an empty map has text keys only
    # keys come back sorted by their encoding, as Go writes them; ints and
    # strings only: a dict (tests/test_torch.py has more)
    assert list(rt(Map([("b", 1), (2, 2), (1, 3)]))) == [1, 2, "b"]


def test_map_key_order_is_deterministic():
    a = {"zz": 1, "a": 2, "b": 3, "aaa": 4}
    b = dict(reversed(list(a.items())))
    assert viacodec.dumps(a) == viacodec.dumps(b)
    m1 = Map([(10, 1), (100, 2), (-1, 3), (b"", 4), ("z", 5), ("text", 6), (False, 7)])
    m2 = Map(reversed(m1))
    assert viacodec.dumps(m1) == viacodec.dumps(m2)
    # docs/wire-format.md §2.1: 10, 100, -1, h'', "z", "text", false
    assert [k for k, _ in rt(m2)] == [10, 100, -1, b"", "z", "text", False]


def test_registered_class():
    class Point:
        def __init__(self, x, y, w):
            self.x, self.y, self.w = x, y, w

    reg = viacodec.Registry()
    reg.register(Point, "test.Point", lambda p: {"x": p.x, "y": p.y, "w": p.w}, lambda d: Point(d["x"], d["y"], d["w"]))
    p = Point(1, np.float32(2.5), np.arange(6, dtype=np.int16).reshape(2, 3))
    msg = viacodec.dumps({"p": p, "ps": [p, p]}, registry=reg)
    got = viacodec.loads(msg, registry=reg)
    for q in (got["p"], *got["ps"]):
        assert isinstance(q, Point) and q.x == 1 and same(q.y, np.float32(2.5)) and same(q.w, p.w)
    # Without the registry: an Object that re-encodes identically.
    obj = viacodec.loads(msg)
    assert isinstance(obj["p"], Object) and obj["p"].name == "test.Point"
    assert same(obj["p"].data["w"], p.w)
    assert viacodec.dumps(obj) == msg
    with pytest.raises(viacodec.UnregisteredError):
        viacodec.loads(msg, unknown="error")
    with pytest.raises(viacodec.InvalidError):
        viacodec.dumps(p)  # not in the default registry


def test_default_registry():
    class Tagged:
        def __init__(self, v):
            self.v = v

    viacodec.register(Tagged, "test.default.Tagged", lambda t: [t.v], lambda d: Tagged(d[0]))
    got = rt({"t": Tagged(b"x")})
    assert isinstance(got["t"], Tagged) and got["t"].v == b"x"
    with pytest.raises(viacodec.InvalidError):
        viacodec.register(Tagged, "test.default.Other", lambda t: 0, lambda d: 0)
    with pytest.raises(viacodec.InvalidError):
        viacodec.register(int, "test.int", lambda t: 0, lambda d: 0)
    # no name is reserved (skeletons mark slots with a tag of their own)
    viacodec.register(type("X", (), {}), "viacodec.slot", lambda t: 0, lambda d: 0)


def test_registry_errors_are_typed():
    class Bad:
        pass

    reg = viacodec.Registry()
    reg.register(Bad, "test.Bad", lambda b: 1 / 0, lambda d: [][0])
    with pytest.raises(viacodec.InvalidError, match="decompose"):
        viacodec.dumps(Bad(), registry=reg)
    msg = viacodec.dumps(Object("test.Bad", 1))
    with pytest.raises(viacodec.MismatchError, match="recompose"):
        viacodec.loads(msg, registry=reg)


def test_unknown_object_reencodes_identically():
    v = Object("some.Type", {"w": np.eye(3, dtype=np.float32), "n": Object("inner", [1, 2.5])})
    msg = viacodec.dumps(v)
    got = viacodec.loads(msg)
    assert same(got, v)
    assert viacodec.dumps(got) == msg


def test_sample_value_matches_go_example():
    # docs/wire-format.md §7: the Go example value and its 81 bytes.
    w = np.array([[1, 2], [3, 4]], dtype=np.float32)
    b = np.array([1, -2], dtype=ml_dtypes.bfloat16)
    msg = {"round": 3, "model": {"w": w, "b": b}, "meta": Map([(1, "one"), (b"\xff", True)])}
    want = bytes.fromhex(
        "da564300008301a3646d657461a201636f6e6541fff5656d6f64656ca26162d828828102"
        "da5643001144803f00c06177d82882820202d855500000803f0000004000004040000080"
        "4065726f756e640380"
    )
    assert viacodec.dumps(msg) == want
    assert same(viacodec.loads(want), msg)


def test_large_model():
    model = {f"layer{i}": random_array(np.float32, (256, 257), seed=i) for i in range(8)}
    model["blob"] = bytes(range(256)) * 4096
    got = rt({"round": 1, "model": model})
    assert same(got["model"], model)
