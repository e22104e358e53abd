"""The skeleton (docs/wire-format.md §4.1) as the package uses it: cbor2's
C extension reads and writes it; random value trees go through dumps and
loads unchanged; and for the same values the package writes the very
bytes the Go core writes, checked against gomarshal, a Go program that
encodes the values' descriptions with core.Marshal."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import types
from typing import Any, List

import cbor2
import ml_dtypes
import numpy as np
import pytest

import viacodec
from viacodec import _skeleton

from conftest import REPO


def test_cbor2_c_extension():
    from cbor2 import _cbor2

    assert isinstance(cbor2.loads, types.BuiltinFunctionType) and isinstance(cbor2.dumps, types.BuiltinFunctionType)
    assert cbor2.loads is _cbor2.loads and _skeleton._CBOR2_C is _cbor2
    assert _cbor2.__file__.endswith((".so", ".pyd")), _cbor2.__file__


# ---- Random values ----

DTYPES = [np.dtype(n) for n in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                               "float16", "float32", "float64", "complex64", "complex128")]
DTYPES += [np.dtype(ml_dtypes.bfloat16), np.dtype(ml_dtypes.float8_e4m3fn), np.dtype(ml_dtypes.float8_e5m2)]


class Gen:
    """Random values of the whole value model, from a seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.batch = viacodec._refs.BatchDescriptor("http://127.0.0.1:9/", self.bytes(16), self.bytes(32), 5, 4096)

    def bytes(self, n: int) -> bytes:
        return self.rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        if depth >= 5 or r.random() < 0.5:
            return self.scalar()
        n = r.choice([0, 1, 2, 3, 5])
        kind = r.choice(["list", "tuple", "dict", "mixed", "map", "object"])
        if kind == "list":
            return [self.value(depth + 1) for _ in range(n)]
        if kind == "tuple":
            return tuple(self.value(depth + 1) for _ in range(n))
        if kind == "dict":
            return {self.text(): self.value(depth + 1) for _ in range(n)}
        if kind == "mixed":
            return {self.key(): self.value(depth + 1) for _ in range(n)}
        if kind == "map":
            keys, seen = [], set()
            for _ in range(n):
                k = self.key()
                if canon(k) not in seen:
                    seen.add(canon(k))
                    keys.append(k)
            return viacodec.Map((k, self.value(depth + 1)) for k in keys)
        return viacodec.Object(r.choice(["p", "demo.Point", "ünï"]), self.value(depth + 1))

    def text(self) -> str:
        return "".join(self.rng.choice("ab\u00e9\u4e2d\U0001f600z") for _ in range(self.rng.randint(0, 4)))

    def key(self) -> Any:
        r = self.rng
        return r.choice([
            lambda: r.randint(-300, 300),
            lambda: r.choice([2**64, -(2**64) - 1, 2**63, -(2**63)]),
            self.text,
            lambda: self.bytes(r.randint(0, 3)),
            lambda: r.choice([True, False]),
            lambda: None,
        ])()

    def scalar(self) -> Any:
        r = self.rng
        return r.choice([
            lambda: None,
            lambda: r.choice([True, False]),
            lambda: r.randint(-(2**70), 2**70) if r.random() < 0.3 else r.randint(-1000, 1000),
            lambda: struct.unpack("<d", self.bytes(8))[0],
            lambda: r.choice([0.0, -0.0, float("inf"), -float("inf"), struct.unpack(">d", bytes.fromhex("fff0000000000123"))[0]]),
            lambda: np.frombuffer(self.bytes(4), np.float32)[0],
            lambda: np.frombuffer(self.bytes(2), np.float16)[0],
            lambda: np.float64(r.random()),
            lambda: r.choice([np.int8(-3), np.uint16(7), np.int64(-(2**63)), np.uint64(2**64 - 1), np.bool_(True)]),
            self.text,
            lambda: self.bytes(r.choice([0, 1, 5, 70_000 if r.random() < 0.1 else 9])),
            lambda: bytearray(self.bytes(3)),
            self.array,
            self.array,
            lambda: complex(r.random(), -r.random()),
            lambda: r.choice([np.complex64(1 - 2j), ml_dtypes.bfloat16(1.5), ml_dtypes.float8_e5m2(-2)]),
            self.lazyref,
        ])()

    def lazyref(self) -> viacodec.LazyRef:
        item = self.rng.randint(0, 4)  # one item, one description: the wire format's rule
        return viacodec.LazyRef(self.batch, item, "float32", (item, 2), item % 2)

    def array(self) -> np.ndarray:
        r = self.rng
        dt = r.choice(DTYPES)
        shape = tuple(r.choice([0, 1, 2, 3, 4]) for _ in range(r.choice([0, 0, 1, 1, 2, 3])))
        if r.random() < 0.1:
            shape = (r.randint(600, 1200),)  # over 4 KiB for 8-byte dtypes: a slot
        count = int(np.prod(shape, dtype=np.int64))
        raw = self.bytes(count * dt.itemsize)
        if dt == np.bool_:
            raw = bytes(b & 1 for b in raw)
        a = np.frombuffer(raw, dt).reshape(shape).copy()
        if a.ndim >= 2 and r.random() < 0.4:
            a = np.asfortranarray(a)
        if a.ndim >= 1 and a.shape[0] > 1 and r.random() < 0.2:
            a = a[::2]  # not contiguous
        if dt.kind in "iuf" and dt.itemsize > 1 and dt.names is None and r.random() < 0.2 and dt.byteorder != "|" and dt.type.__module__ == "numpy":
            a = a.astype(dt.newbyteorder(">"))
        return a


# ---- What a value is, for comparison and for gomarshal ----


def canon(v: Any) -> Any:
    """v as a comparable tree of what the message says: the value as
    loads returns it and as the Go core describes it."""
    if v is None or type(v) in (bool, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return ("int", int(v))
    if isinstance(v, (bytes, bytearray, memoryview)):
        return ("bytes", bytes(v))
    if isinstance(v, np.float32):
        return ("f32", v.tobytes())
    if isinstance(v, np.float16):
        return ("f16", v.tobytes())
    if isinstance(v, float):
        return ("f64", struct.pack("<d", v))
    if isinstance(v, (complex, np.generic)):
        return canon(np.asarray(v, dtype=np.complex128 if type(v) is complex else None))
    if isinstance(v, (list, tuple)) and not isinstance(v, viacodec.Map):
        return ("list", [canon(x) for x in v])
    if isinstance(v, (dict, viacodec.Map)):
        pairs = list(v.items()) if isinstance(v, dict) else list(v)
        if all(type(k) is str for k, _ in pairs):
            return ("map", sorted((k, canon(x)) for k, x in pairs))
        return ("pairs", sorted((repr(canon(k)), canon(x)) for k, x in pairs))
    if isinstance(v, np.ndarray):
        le = v.dtype.newbyteorder("<") if v.dtype.byteorder == ">" else v.dtype
        f = order_f(v)
        return ("array", str(le), v.shape, f, np.ascontiguousarray(v).astype(le).tobytes() if not f else v.astype(le).tobytes(order="F"))
    if isinstance(v, viacodec.Object):
        return ("object", v.name, canon(v.data))
    if isinstance(v, viacodec.LazyRef):
        return ("ref", v._batch, v.item, v.dtype_name, v.shape, v.order if sum(d > 1 for d in v.shape) >= 2 and 0 not in v.shape else "C")
    raise AssertionError(f"no canon for {type(v)}")


def order_f(a: np.ndarray) -> bool:
    """Whether a travels column-major: Fortran-contiguous only, with the
    order mattering for its shape."""
    return a.flags.f_contiguous and not a.flags.c_contiguous and 0 not in a.shape and sum(d > 1 for d in a.shape) >= 2


def describe(v: Any) -> Any:
    """v as gomarshal's JSON: built from the Python value alone, not from
    anything the package wrote."""
    if v is None:
        return {"t": "null"}
    if isinstance(v, (bool, np.bool_)):
        return {"t": "bool", "v": bool(v)}
    if isinstance(v, (int, np.integer)):
        return {"t": "int", "v": str(int(v))}
    if isinstance(v, np.float32):
        return {"t": "float", "w": 32, "bits": np.array(v, ">f4").tobytes().hex()}
    if isinstance(v, np.float16):
        return {"t": "float", "w": 16, "bits": np.array(v, ">f2").tobytes().hex()}
    if isinstance(v, float):
        return {"t": "float", "w": 64, "bits": struct.pack(">d", v).hex()}
    if isinstance(v, str):
        return {"t": "text", "v": v}
    if isinstance(v, (bytes, bytearray)):
        return {"t": "bytes", "hex": bytes(v).hex()}
    if isinstance(v, (complex, np.generic)):
        return describe(np.asarray(v, dtype=np.complex128 if type(v) is complex else None))
    if isinstance(v, viacodec.Map) or (isinstance(v, dict) and not all(type(k) is str for k in v)):
        pairs = list(v) if isinstance(v, viacodec.Map) else list(v.items())
        return {"t": "pairs", "pairs": [[describe(k), describe(x)] for k, x in pairs]}
    if isinstance(v, dict):
        return {"t": "map", "entries": [[k, describe(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return {"t": "list", "items": [describe(x) for x in v]}
    if isinstance(v, np.ndarray):
        le = v.dtype.newbyteorder("<") if v.dtype.byteorder == ">" else v.dtype
        f = v.flags.f_contiguous and not v.flags.c_contiguous
        return {"t": "array", "dtype": str(le), "shape": list(v.shape), "order": "F" if f else "C",
                "hex": v.astype(le).tobytes(order="F" if f else "C").hex()}
    if isinstance(v, viacodec.Object):
        return {"t": "object", "name": v.name, "data": describe(v.data)}
    if isinstance(v, viacodec.LazyRef):
        b = v._batch
        return {"t": "ref", "source": b.source, "ref_id": b.ref_id.hex(), "token": b.token.hex(), "batch_items": b.items,
                "batch_bytes": b.nbytes, "item": v.item, "dtype": v.dtype_name, "shape": list(v.shape), "order": v._order}
    raise AssertionError(f"cannot describe {type(v)}")


# ---- gomarshal ----


def go_command() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.path.exists(go):
        pytest.fail("these tests build a Go program: put go on PATH (or in /usr/local/go/bin)")
    return go


@pytest.fixture(scope="module")
def gomarshal(tmp_path_factory):
    exe = tmp_path_factory.mktemp("gomarshal") / "gomarshal"
    subprocess.run([go_command(), "build", "-o", str(exe), "./bindings/python/tests/gomarshal"], cwd=REPO, check=True, timeout=900)
    return exe


def go_marshal(exe: Any, values: List[Any]) -> List[str]:
    lines = "".join(json.dumps(describe(v)) + "\n" for v in values)
    out = subprocess.run([str(exe)], input=lines, capture_output=True, text=True, check=True, timeout=300).stdout.splitlines()
    assert len(out) == len(values)
    return out


# ---- The tests ----

SEEDS = range(8)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_values_round_trip(seed):
    """Random value trees of every kind the value model has go through
    dumps and loads unchanged, and loads' value dumps to the same bytes."""
    g = Gen(seed)
    for _ in range(150):
        v = g.value()
        msg = viacodec.dumps(v)
        back = viacodec.loads(msg, pass_through=True)
        assert canon(back) == canon(v), v
        assert viacodec.dumps(back) == msg


@pytest.mark.parametrize("seed", SEEDS)
def test_python_and_go_write_the_same_bytes(gomarshal, seed):
    """For the same values, dumps writes the bytes core.Marshal writes."""
    g = Gen(1000 + seed)
    values = [g.value() for _ in range(150)]
    got = go_marshal(gomarshal, values)
    for v, want in zip(values, got):
        assert not want.startswith("error"), (want, v)
        assert viacodec.dumps(v).hex() == want, v


def test_go_and_python_agree_on_the_golden_values(gomarshal):
    """The check is not vacuous: gomarshal writes the golden sample, and a
    value Go refuses (a float key) is one the package refuses too."""
    sample = {"round": 3, "meta": viacodec.Map([(1, "one"), (b"\xff", True)]),
              "model": {"w": np.array([[1, 2], [3, 4]], np.float32), "b": np.array([1, -2], ml_dtypes.bfloat16)}}
    want = (REPO / "testdata" / "golden" / "example.cbor").read_bytes().hex()
    assert go_marshal(gomarshal, [sample]) == [want]
    assert viacodec.dumps(sample).hex() == want
    bad = {"t": "pairs", "pairs": [[{"t": "float", "w": 64, "bits": "3ff0000000000000"}, {"t": "null"}]]}
    out = subprocess.run([str(gomarshal)], input=json.dumps(bad) + "\n", capture_output=True, text=True, check=True).stdout
    assert out.startswith("error invalid"), out
    with pytest.raises(viacodec.InvalidError):
        viacodec.dumps({1.0: None})


def test_small_arrays_come_back_new_and_writable():
    """Arrays that cross inside the skeleton are arrays of their own, as
    slots are: writable, owning their memory, in their order."""
    values = [np.array(7, np.uint8), np.arange(6, dtype=">i4").reshape(2, 3), np.asfortranarray(np.arange(6.0).reshape(2, 3)),
              np.array([True, False]), np.array(1.5, ml_dtypes.bfloat16), np.zeros((0, 3), np.float32)]
    back = viacodec.loads(viacodec.dumps(values))
    for a, b in zip(values, back):
        assert b.flags.writeable and (b.flags.owndata or b.size == 0) and b.dtype == a.dtype.newbyteorder("<")
        assert np.array_equal(a, b) and b.shape == a.shape
    assert back[2].flags.f_contiguous and not back[2].flags.c_contiguous
    back[0][...] = 9
    assert values[0] == 7


def test_subclasses_keep_their_meaning():
    """cbor2 finds encoders by exact class: subclasses of Map still write
    maps (not the lists they also are), of float still keep NaN payloads,
    and types cbor2 would encode by their own tags (sets, dates, ranges)
    are refused."""

    class Pairs(viacodec.Map):
        pass

    class Real(float):
        pass

    got = viacodec.loads(viacodec.dumps({"m": Pairs([(1, "a"), (True, "b")]), "f": np.float64(struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0])}))
    assert got["m"] == viacodec.Map([(1, "a"), (True, "b")])
    assert struct.pack(">d", got["f"]).hex() == "7ff8000000000123"
    assert viacodec.loads(viacodec.dumps(Real(2.5))) == 2.5
    import datetime

    for bad in ({1}, frozenset(), datetime.date(2020, 1, 1), range(2), cbor2.CBORTag(0x56430003, 0), cbor2.undefined):
        with pytest.raises(viacodec.InvalidError, match="not in the value model"):
            viacodec.dumps([bad])


def test_lazy_refs_of_many_batches_round_trip():
    """Lazy refs of several batches, interleaved and repeated, cross the
    skeleton both ways (a batch's descriptor in full once, by number
    after): loads gives each its batch, one descriptor object per batch,
    and dumps writes the same message again."""
    held = "http://127.0.0.1:9"
    batches = [viacodec._refs.BatchDescriptor(f"http://127.0.0.1:{i + 1}", bytes([i + 1]) * 16, bytes([i + 1]) * 32, 100, 400, held if i == 2 else "")
               for i in range(3)]
    refs = [viacodec.LazyRef(batches[i % 3], (i * 7) % 100, "float32", (1,), 0) for i in range(300)]
    refs += refs[:10]
    msg = viacodec.dumps(refs)
    back = viacodec.loads(msg, pass_through=True)
    assert [(r._batch, r.item, r.shape) for r in back] == [(r._batch, r.item, r.shape) for r in refs]
    assert len({id(r._batch) for r in back}) == 3
    assert viacodec.dumps(back) == msg
