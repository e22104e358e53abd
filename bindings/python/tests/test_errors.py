"""Bad input raises the exception class of its kind and never crashes the
interpreter; misuse of the C ABI itself is answered with an error."""

from __future__ import annotations

import ctypes
import os
import pickle
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import viacodec
from viacodec import _ffi, _skeleton

from conftest import GOLDEN, PKG_DIR

SAMPLE = viacodec.dumps(
    {
        "round": 7,
        "model": {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "f": np.asfortranarray(np.ones((2, 3), np.int16))},
        "meta": viacodec.Map([(1, "x"), (b"k", [1.5, None, True])]),
        "obj": viacodec.Object("t", [2**70, "s"]),
        "blob": b"b" * 70_000,
    }
)


def test_exception_hierarchy():
    classes = [
        (viacodec.InvalidError, 1),
        (viacodec.DecodeSyntaxError, 2),
        (viacodec.LimitError, 3),
        (viacodec.UnknownTagError, 4),
        (viacodec.MismatchError, 5),
        (viacodec.UnregisteredError, 6),
        (viacodec.ProtocolError, 7),
        (viacodec.UnknownRefError, 8),
        (viacodec.ExpiredError, 9),
        (viacodec.AuthError, 10),
        (viacodec.ViacodecTimeoutError, 11),
        (viacodec.AbortedError, 12),
        (viacodec.ChecksumError, 13),
        (viacodec.SourceUnavailableError, 14),
    ]
    for cls, kind in classes:
        assert issubclass(cls, viacodec.ViacodecError) and cls.kind == kind
        e = viacodec._errors.error_for(kind, "m", 3)
        assert type(e) is cls and e.message == "m" and e.offset == 3 and str(e) == "m"
    e = viacodec._errors.error_for(99, "future kind")
    assert type(e) is viacodec.ViacodecError and e.kind == 99
    # No builtin is shadowed.
    assert viacodec.ViacodecTimeoutError is not TimeoutError
    assert viacodec.DecodeSyntaxError is not SyntaxError


def test_errors_are_builtins_too():
    """Each error is also the builtin a Python caller expects (a timeout is
    a TimeoutError, a value of a type viacodec cannot encode a TypeError),
    .kind is an ErrorKind that still compares equal to its number, and
    ``except ViacodecError`` catches them all."""
    builtin = {
        viacodec.InvalidError: ValueError,
        viacodec.DecodeSyntaxError: ValueError,
        viacodec.LimitError: ValueError,
        viacodec.UnknownTagError: ValueError,
        viacodec.MismatchError: ValueError,
        viacodec.UnregisteredError: ValueError,
        viacodec.ProtocolError: ValueError,
        viacodec.UnknownRefError: LookupError,
        viacodec.ExpiredError: LookupError,
        viacodec.AuthError: PermissionError,
        viacodec.ViacodecTimeoutError: TimeoutError,
        viacodec.SourceUnavailableError: ConnectionError,
        viacodec.UnsupportedTypeError: TypeError,
    }
    for cls, base in builtin.items():
        assert issubclass(cls, base) and issubclass(cls, viacodec.ViacodecError), cls
        e = cls("viacodec: m", 3)
        assert str(e) == "viacodec: m" and e.args == ("viacodec: m",) and e.offset == 3, cls
        assert isinstance(e.kind, viacodec.ErrorKind)
        copy = pickle.loads(pickle.dumps(e))
        assert type(copy) is cls and str(copy) == "viacodec: m" and copy.offset == 3
    assert viacodec.ViacodecTimeoutError.kind == 11 == viacodec.ErrorKind.TIMEOUT
    assert viacodec.InvalidError.kind.name == "INVALID"
    for v in ({1, 2}, frozenset(), object(), np.array(["a"]), np.ma.masked_array([1])):
        with pytest.raises(TypeError) as info:
            viacodec.dumps(v)
        assert isinstance(info.value, viacodec.InvalidError) and info.value.kind == 1
    with pytest.raises(TypeError):
        viacodec.loads("not bytes")
    with pytest.raises(ValueError):
        viacodec.loads(b"\xff")
    with pytest.raises(viacodec.ViacodecError):
        viacodec.dumps({1, 2})


def test_every_truncation_is_a_syntax_error():
    assert viacodec.loads(SAMPLE)["round"] == 7
    for n in range(len(SAMPLE)):
        with pytest.raises(viacodec.DecodeSyntaxError) as info:
            viacodec.loads(SAMPLE[:n])
        assert info.value.offset is not None and 0 <= info.value.offset <= n


def test_trailing_data():
    with pytest.raises(viacodec.DecodeSyntaxError) as info:
        viacodec.loads(SAMPLE + b"\x00")
    assert info.value.offset == len(SAMPLE)


def test_random_bytes_and_mutations():
    rng = random.Random(1)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        try:
            viacodec.loads(data)
        except viacodec.ViacodecError:
            pass
    header = SAMPLE[:7]
    for _ in range(2000):
        data = header + bytes(rng.randrange(256) for _ in range(rng.randrange(48)))
        try:
            viacodec.loads(data)
        except viacodec.ViacodecError:
            pass
    msgs = [SAMPLE] + [p.read_bytes() for p in sorted(GOLDEN.glob("*.cbor"))]
    for _ in range(3000):
        data = bytearray(rng.choice(msgs))
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            v = viacodec.loads(data)
        except viacodec.ViacodecError:
            continue
        # What decodes encodes again, and stably.
        again = viacodec.dumps(v)
        assert viacodec.dumps(viacodec.loads(again)) == again


@pytest.mark.parametrize(
    "data, cls",
    [
        (b"", viacodec.DecodeSyntaxError),
        (b"\x80", viacodec.ProtocolError),  # no envelope
        (bytes.fromhex("da56430000 83 02 f6 80"), viacodec.ProtocolError),  # version 2
        (bytes.fromhex("da5643000083 01 f7 80"), viacodec.ProtocolError),  # undefined
        (bytes.fromhex("da5643000083 01 d829 00 80"), viacodec.UnknownTagError),  # tag 41
        (bytes.fromhex("da5643000083 01 9f ff 80"), viacodec.DecodeSyntaxError),  # indefinite
        (bytes.fromhex("da5643000083 01 a2 6161 01 6161 02 80"), viacodec.DecodeSyntaxError),  # duplicate key
        (bytes.fromhex("da5643000083 01 a1 f93c00 01 80"), viacodec.ProtocolError),  # float key
        (bytes.fromhex("da5643000083 01 d828 82 81 03 d855 44 00000000 80"), viacodec.MismatchError),  # shape/length
        (bytes.fromhex("da5643000083 01 d828 82 81 01 da56430010 41 02 80"), viacodec.MismatchError),  # bool 2
        (bytes.fromhex("da5643000083 01 9b 4000000000000000 80"), viacodec.DecodeSyntaxError),  # huge count
        (bytes.fromhex("da5643000083 01 da56430003 00 80"), viacodec.UnknownTagError),  # a skeleton's slot tag
    ],
    ids=lambda x: x.hex() if isinstance(x, bytes) else x.__name__,
)
def test_malformed_messages(data, cls):
    with pytest.raises(cls):
        viacodec.loads(data)


def test_limits():
    deep = []
    cur = deep
    for _ in range(20):
        nxt = []
        cur.append(nxt)
        cur = nxt
    msg = viacodec.dumps(deep)
    assert viacodec.loads(msg) == deep
    with pytest.raises(viacodec.LimitError):
        viacodec.loads(msg, max_depth=10)
    big = viacodec.dumps(np.zeros(1000, np.float64))
    with pytest.raises(viacodec.LimitError):
        viacodec.loads(big, max_array_bytes=100)
    with pytest.raises(viacodec.LimitError):
        viacodec.loads(big, max_message_size=100)
    with pytest.raises(viacodec.LimitError):
        viacodec.loads(viacodec.dumps([0] * 100), max_elements=10)
    with pytest.raises(viacodec.LimitError):
        viacodec.loads(viacodec.dumps("x" * 100), max_byte_len=10)
    with pytest.raises(viacodec.InvalidError):
        viacodec.loads(msg, max_depth=5000)  # outside the core's range
    with pytest.raises(viacodec.InvalidError):
        viacodec.loads(msg, max_depth=-1)


def test_encode_limits_and_cycles():
    a = []
    a.append(a)
    with pytest.raises(viacodec.LimitError):
        viacodec.dumps(a)
    d = {}
    d["self"] = d
    with pytest.raises(viacodec.LimitError):
        viacodec.dumps(d)
    nested = [[[[1]]]]
    assert viacodec.dumps(nested, max_depth=4)
    with pytest.raises(viacodec.LimitError):
        viacodec.dumps(nested, max_depth=3)
    # an array takes three levels, as the core counts them
    assert viacodec.dumps([np.zeros(1)], max_depth=4)
    with pytest.raises(viacodec.LimitError):
        viacodec.dumps([np.zeros(1)], max_depth=3)
    for bad in (-1, 4097, "3", 1.5):
        with pytest.raises(viacodec.InvalidError, match="outside 1..4096"):
            viacodec.dumps(1, max_depth=bad)
    # 0 is the core's default, read from the library (vc_get_limits)
    limits = viacodec._ffi.lib().limits()
    assert (limits.max_depth_default, limits.max_depth_limit, limits.max_dims) == (128, 4096, 64)
    deep = 1
    for _ in range(128):
        deep = [deep]
    assert viacodec.dumps(deep) == viacodec.dumps(deep, max_depth=0) == viacodec.dumps(deep, max_depth=128)
    with pytest.raises(viacodec.LimitError, match="max_depth 128"):
        viacodec.dumps([deep])


def _down(v):
    """The innermost value of a chain of one-item lists, tuples, dicts and
    Maps, and how deep it lies (iteratively: == would recurse)."""
    depth = 0
    while not isinstance(v, int):
        v = next(iter(v.values())) if type(v) is dict else v[0][1] if isinstance(v, viacodec.Map) else v[0]
        depth += 1
    return v, depth


@pytest.mark.parametrize("kind", ["list", "tuple", "dict", "int-key dict"])
def test_max_depth_holds_its_range_both_ways(kind):
    """max_depth's whole range, 1 to 4096, holds in dumps and in loads:
    values nest 4096 deep, one level more is a LimitError in the words of
    the Python API."""
    make = {"list": lambda v: [v], "tuple": lambda v: (v,), "dict": lambda v: {"k": v}, "int-key dict": lambda v: {1: v}}[kind]
    v = 7
    for _ in range(4096):
        v = make(v)
    msg = viacodec.dumps(v, max_depth=4096)
    assert _down(viacodec.loads(msg, max_depth=4096)) == (7, 4096)
    with pytest.raises(viacodec.LimitError, match="max_depth 4096"):
        viacodec.dumps(make(v), max_depth=4096)
    with pytest.raises(viacodec.LimitError, match="max_depth 4095"):
        viacodec.loads(msg, max_depth=4095)
    with viacodec.Host() as h:
        assert _down(h.loads(msg, max_depth=4096)) == (7, 4096)
        assert h.dumps(v, max_depth=4096) == (msg, None)


def test_python_hooks_bound_the_depth_of_dumps():
    """Map, Object and registered classes are written by Python code, so
    Python's recursion limit bounds how deep they nest in dumps (lists,
    tuples and dicts are not): beyond it a LimitError that says so, never
    a RecursionError. loads has no such bound."""
    v = 1
    for _ in range(3000):
        v = viacodec.Map([(1, v)])
    with pytest.raises(viacodec.LimitError, match="recursion limit"):
        viacodec.dumps(v, max_depth=4096)
    v = 1
    for _ in range(100):
        v = viacodec.Object("t", [viacodec.Map([(True, v)])])
    back = viacodec.loads(viacodec.dumps(v, max_depth=4096), max_depth=4096)
    for _ in range(100):
        back = back.data[0][0][1]
    assert back == 1


def test_errors_name_the_python_api():
    with viacodec.Host() as h:
        msg, tx = h.dumps({"w": np.zeros(1 << 18, np.float32)})
        with pytest.raises(viacodec.InvalidError, match=r"Host\.loads.*pass_through=True") as e:
            viacodec.loads(msg)
        assert "a host" not in str(e.value)
        tx.abort()
    with pytest.raises(viacodec.InvalidError, match="max_elements") as e:
        viacodec.loads(viacodec.dumps(1), max_elements=1 << 50)
    assert "MaxElements" not in str(e.value)
    with pytest.raises(viacodec.LimitError, match="max_depth 2"):
        viacodec.loads(viacodec.dumps([[[1]]]), max_depth=2)
    with pytest.raises(viacodec.LimitError, match="max_depth 2"):
        viacodec.dumps([[[1]]], max_depth=2)


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        frozenset(),
        object(),
        {1.5: "float key"},
        {(1, 2): "tuple key"},
        {np.float32(1): "float key"},
        "\ud800",
        {"\udfff": 1},
        np.array(["a", "b"]),
        np.zeros(3, dtype=object),
        np.zeros(2, dtype=[("a", "i4")]),
        np.datetime64("2020-01-01"),
        np.longdouble(1),
        np.ma.masked_array([1, 2], mask=[0, 1]),
        viacodec.Object("", 1),
        viacodec.Map([(1, "a"), (1, "b")]),
        viacodec.Map([(True, "a"), (np.bool_(True), "b")]),
        range(3),
        type,
    ],
    ids=lambda v: type(v).__name__,
)
def test_values_that_do_not_encode(value):
    with pytest.raises(viacodec.InvalidError):
        viacodec.dumps(value)


@pytest.mark.parametrize("data", ["text", 123, None, 1.5, [1, 2], object()], ids=lambda v: type(v).__name__)
def test_loads_wrong_types(data):
    with pytest.raises(viacodec.InvalidError):
        viacodec.loads(data)


def test_loads_options():
    with pytest.raises(viacodec.InvalidError):
        viacodec.loads(SAMPLE, unknown="ignore")


# ---- the C ABI, driven directly ----


def err():
    return ctypes.byref(_ffi.VcError())


def test_bad_and_released_handles():
    lib = _ffi.lib()
    for h in (0, -1, 1 << 62, 123456789):
        with pytest.raises(viacodec.InvalidError, match="unknown or released"):
            lib.release(h)
        with pytest.raises(viacodec.InvalidError):
            lib.message_copy(h, 0, 0)
        with pytest.raises(viacodec.InvalidError):
            lib.decode_fill(h, None, 0)
    skel = bytearray(_skeleton.write(1, viacodec.default_registry, 128, 0)[0])
    buf = (ctypes.c_char * len(skel)).from_buffer(skel)
    h, size = lib.encode(ctypes.addressof(buf), len(skel), None, 0, _ffi.VcEncOptions())
    out = ctypes.create_string_buffer(size)
    with pytest.raises(viacodec.InvalidError, match="smaller"):
        lib.message_copy(h, ctypes.addressof(out), size - 1)
    with pytest.raises(viacodec.InvalidError, match="NULL"):
        lib.message_copy(h, None, size)
    with pytest.raises(viacodec.InvalidError, match="not a decode handle"):
        lib.decode_fill(h, None, 0)
    lib.message_copy(h, ctypes.addressof(out), size)
    assert out.raw == viacodec.dumps(1)
    lib.release(h)
    with pytest.raises(viacodec.InvalidError, match="unknown or released"):
        lib.message_copy(h, ctypes.addressof(out), size)
    with pytest.raises(viacodec.InvalidError, match="unknown or released"):
        lib.release(h)


def test_decode_fill_checks_destinations():
    lib = _ffi.lib()
    msg = viacodec.dumps([np.arange(4, dtype=np.int32), b"q" * 70_000])
    view = np.frombuffer(msg, np.uint8)
    h, _, _, specs, n = lib.decode(view.ctypes.data, len(msg), _ffi.VcDecOptions(bytes_slot_min=65536))
    try:
        assert n == 2
        assert (specs[0].dtype, specs[0].nbytes, specs[0].ndim, specs[0].shape[0]) == (4, 16, 1, 4)
        assert (specs[1].dtype, specs[1].nbytes, specs[1].ndim) == (0, 70_000, 0)
        a = np.zeros(4, np.int32)
        dst = (_ffi.VcSlot * 3)()
        with pytest.raises(viacodec.InvalidError, match="destinations"):
            lib.decode_fill(h, dst, 3)
        dst = (_ffi.VcSlot * 1)()
        dst[0].data, dst[0].nbytes, dst[0].dtype = a.ctypes.data, 8, 4
        with pytest.raises(viacodec.MismatchError):
            lib.decode_fill(h, dst, 1)
        dst[0].nbytes, dst[0].dtype = 16, 5
        with pytest.raises(viacodec.MismatchError):
            lib.decode_fill(h, dst, 1)
        dst[0].dtype = 4
        lib.decode_fill(h, dst, 1)  # fills slot 0 only
        assert a.tolist() == [0, 1, 2, 3]
        with pytest.raises(viacodec.InvalidError):
            lib.decode_fill(h, None, 1)
        with pytest.raises(viacodec.InvalidError):
            lib.decode_fill(h, dst, -1)
    finally:
        lib.release(h)


def test_null_pointers_and_bad_slots():
    lib = _ffi.lib()
    e = _ffi.VcError()
    with pytest.raises(viacodec.InvalidError, match="NULL"):
        lib.vc_encode(None, 0, None, 0, None, None, None, ctypes.byref(e))
    with pytest.raises(viacodec.InvalidError):
        lib.vc_decode(None, 5, None, None, None, None, None, None, err())
    h, size = ctypes.c_int64(), ctypes.c_uint64()
    with pytest.raises(viacodec.InvalidError, match="skeleton is NULL"):
        lib.vc_encode(None, 10, None, 0, None, ctypes.byref(h), ctypes.byref(size), err())
    with pytest.raises(viacodec.InvalidError, match="value: "):  # an empty skeleton: a bad argument
        lib.vc_encode(None, 0, None, 0, None, ctypes.byref(h), ctypes.byref(size), err())
    # A skeleton whose slot has no descriptor, and bad descriptors.
    skel = bytearray(_skeleton.write(np.zeros(2), viacodec.default_registry, 128, 0)[0])
    buf = (ctypes.c_char * len(skel)).from_buffer(skel)
    with pytest.raises(viacodec.InvalidError, match="out of range"):
        lib.encode(ctypes.addressof(buf), len(skel), None, 0, _ffi.VcEncOptions())
    a = np.zeros(2)
    shape = (ctypes.c_int64 * 1)(2)
    slots = (_ffi.VcSlot * 1)()
    slots[0].data, slots[0].nbytes, slots[0].dtype, slots[0].ndim, slots[0].shape = a.ctypes.data, 16, 13, 1, shape
    for field, value, cls in [
        ("dtype", 99, viacodec.MismatchError),
        ("dtype", -3, viacodec.MismatchError),
        ("order", 5, viacodec.MismatchError),
        ("nbytes", 15, viacodec.MismatchError),
        ("ndim", 1000, viacodec.InvalidError),
        ("ndim", -1, viacodec.InvalidError),
        ("data", None, viacodec.InvalidError),
        ("shape", None, viacodec.InvalidError),
    ]:
        bad = (_ffi.VcSlot * 1)()
        ctypes.memmove(bad, slots, ctypes.sizeof(slots))
        setattr(bad[0], field, value)
        with pytest.raises(cls):
            lib.encode(ctypes.addressof(buf), len(skel), bad, 1, _ffi.VcEncOptions())
    with pytest.raises(viacodec.InvalidError):
        lib.encode(ctypes.addressof(buf), len(skel), slots, -1, _ffi.VcEncOptions())
    h, _ = lib.encode(ctypes.addressof(buf), len(skel), slots, 1, _ffi.VcEncOptions())
    lib.release(h)
    with pytest.raises(viacodec.InvalidError):
        lib.encode(ctypes.addressof(buf), len(skel), slots, 1, _ffi.VcEncOptions(max_depth=-5))
    # error text and offset come back; a NULL vc_error* is allowed
    with pytest.raises(viacodec.InvalidError):
        lib.vc_release(777777, None)
    raw = ctypes.CDLL(lib.path).vc_release  # no errcheck: the bare status
    raw.restype, raw.argtypes = ctypes.c_int32, [ctypes.c_int64, ctypes.c_void_p]
    assert raw(777777, None) == 1


def test_error_offsets():
    with pytest.raises(viacodec.DecodeSyntaxError) as info:
        viacodec.loads(bytes.fromhex("da5643000083 01 83 01 02"))
    assert info.value.offset == 7 and "offset 7" in str(info.value)  # the list head


def test_missing_library_raises_file_not_found(tmp_path):
    missing = tmp_path / "nowhere" / "libviacodec.so"
    code = textwrap.dedent(
        """
        import viacodec
        try:
            viacodec.dumps(1)
        except FileNotFoundError as e:
            print("FNF", e.filename)
            print(e)
        """
    )
    env = dict(os.environ, VIACODEC_LIBRARY=str(missing), PYTHONPATH=str(PKG_DIR.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"FNF {missing}" in out.stdout
    assert "make python" in out.stdout


def test_library_path_override(tmp_path):
    code = "import viacodec; print(viacodec.library_path()); print(viacodec.loads(viacodec.dumps([1])))"
    env = dict(os.environ, VIACODEC_LIBRARY=str(PKG_DIR / "libviacodec.so"), PYTHONPATH=str(PKG_DIR.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == [str(PKG_DIR / "libviacodec.so"), "[1]"]


def test_without_ml_dtypes():
    """Without ml_dtypes, bfloat16 and float8 arrays raise MismatchError on
    decode; everything else works."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["ml_dtypes"] = None  # import fails
        import numpy as np, viacodec
        assert viacodec.loads(viacodec.dumps(np.arange(3))).tolist() == [0, 1, 2]
        data = open({str(GOLDEN / "dtypes.cbor")!r}, "rb").read()
        try:
            viacodec.loads(data)
        except viacodec.MismatchError as e:
            print("mismatch:", e)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(PKG_DIR.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "mismatch:" in out.stdout and "ml_dtypes" in out.stdout


def test_errors_speak_the_python_api():
    """Errors name the package, not the Go packages or C functions inside."""
    cases = [
        lambda: viacodec.loads(b"\x80"),
        lambda: viacodec.loads(b"\xda\x56\x43\x00\x00\x83\x01\xf7\x80"),
    ]
    with viacodec.Host() as h:
        msg, tx = h.dumps({"w": np.zeros(1 << 18, np.float32)})
        cases.append(lambda: viacodec.loads(msg))  # refs without a host
        for f in cases:
            with pytest.raises(viacodec.ViacodecError) as e:
                f()
            text = str(e.value)
            assert text.startswith("viacodec: "), text
            for word in ("core:", "capi", "hostdl:", "vc_", "abi"):
                assert word not in text, text
        tx.abort()


def _huge_ref_message(dims: bytes) -> bytes:
    """A relay's message: one ref node declaring float32 with the given
    CBOR shape list, and its batch descriptor (a source nobody serves)."""
    node = bytes.fromhex("da56430002 85 00 00 67") + b"float32" + dims + b"\x00"
    source = b"http://127.0.0.1:9"
    desc = bytes([0x85, 0x60 + len(source)]) + source + b"\x50" + bytes(range(16)) + b"\x58\x20" + bytes(32) + b"\x01\x1b" + (1 << 62).to_bytes(8, "big")
    return bytes.fromhex("da5643000083 01") + node + b"\x81" + desc


def test_ref_shapes_meet_the_limits_before_allocation():
    # [2^30, 2^30] float32 = 2^62 bytes: over any limit, in pass-through too
    msg = _huge_ref_message(bytes.fromhex("82 1a40000000 1a40000000"))
    with pytest.raises(viacodec.LimitError):
        viacodec.loads(msg, pass_through=True, max_array_bytes=1000)
    with pytest.raises(viacodec.LimitError):
        viacodec.loads(msg, pass_through=True)
    # [2^20, 2^20] float32 = 4 TiB: a wide relay forwards it, and resolving
    # it meets the default limit (64 GiB) before numpy allocates anything
    msg = _huge_ref_message(bytes.fromhex("82 1a00100000 1a00100000"))
    ref = viacodec.loads(msg, pass_through=True, max_array_bytes=1 << 48)
    assert isinstance(ref, viacodec.LazyRef) and ref.nbytes == 1 << 42
    with pytest.raises(viacodec.LimitError):
        viacodec.resolve(ref, timeout=5)
    with viacodec.Host() as h, pytest.raises(viacodec.LimitError):
        h.loads(msg)
