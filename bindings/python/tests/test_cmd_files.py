"""The `viacodec` command's pack and unpack against the files that the
Python safetensors package and numpy write: every dtype both sides know
survives bit for bit, in both directions.

The command is built by `make test-python` into bin/viacodec (or named by
the VIACODEC_CMD environment variable)."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from typing import Dict, List

import ml_dtypes
import numpy as np
import pytest
import safetensors
from safetensors.numpy import save_file

import viacodec

from conftest import REPO

CMD = os.environ.get("VIACODEC_CMD", str(REPO / "bin" / "viacodec"))

# Every dtype of the safetensors format that viacodec has.
SAFETENSORS_DTYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.complex64,
    ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2,
]
# Every numpy dtype an .npy file and viacodec share.
NPY_DTYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.complex64, np.complex128,
]


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    assert os.access(CMD, os.X_OK), f"{CMD} is missing: `make test-python` builds it"
    return subprocess.run([CMD, *args], input=stdin, capture_output=True, timeout=60)


def ok(*args: str, stdin: bytes = b"") -> bytes:
    r = run(*args, stdin=stdin)
    assert r.returncode == 0 and r.stderr == b"", r.stderr.decode()
    return r.stdout


def random_array(rng: np.random.Generator, dtype, shape) -> np.ndarray:
    """Random bits of dtype (NaN payloads, subnormals and all); bools 0/1."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = rng.integers(0, 256, n, dtype=np.uint8)
    if dtype == np.bool_:
        raw &= 1
    return raw.view(dtype).reshape(shape)


def model(dtypes: List, seed: int) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = {f"layers.0.{np.dtype(dt).name}": random_array(rng, dt, (4, 3)) for dt in dtypes}
    m["scalar"] = random_array(rng, np.float64, ())
    m["empty"] = random_array(rng, np.int32, (0, 5))
    return m


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def check_message(msg: bytes, tensors: Dict[str, np.ndarray], metadata=None) -> None:
    """The message decodes, in the Python package, to the tensors bit for
    bit, and to the metadata under "__metadata__"."""
    body = viacodec.loads(msg)
    want = set(tensors) | ({"__metadata__"} if metadata is not None else set())
    assert set(body) == want
    for name, a in tensors.items():
        assert same_bits(body[name], a), name
    if metadata is not None:
        assert body["__metadata__"] == metadata


def raw_safetensors(data: bytes) -> Dict[str, dict]:
    """The tensors of a safetensors file as the library's Rust core reads
    them: dtype, shape and bytes (numpy has no name for BF16 or F8)."""
    return {name: view for name, view in safetensors.deserialize(data)}


def test_safetensors_from_python_read_back_bit_exact(tmp_path):
    tensors = model(SAFETENSORS_DTYPES, seed=1)
    metadata = {"format": "pt", "note": "ünïcode \"quoted\"\n"}
    save_file(tensors, tmp_path / "m.safetensors", metadata=metadata)
    original = (tmp_path / "m.safetensors").read_bytes()

    ok("pack", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m.cbor"))
    msg = (tmp_path / "m.cbor").read_bytes()
    check_message(msg, tensors, metadata)

    ok("unpack", str(tmp_path / "m.cbor"), "-o", str(tmp_path / "back.safetensors"))
    back = (tmp_path / "back.safetensors").read_bytes()
    assert raw_safetensors(back) == raw_safetensors(original)
    with safetensors.safe_open(tmp_path / "back.safetensors", framework="np") as f:
        assert f.metadata() == metadata


def test_safetensors_written_like_the_library(tmp_path):
    """Without metadata (the library orders metadata keys at random), the
    file unpack writes is the library's, byte for byte."""
    tensors = model(SAFETENSORS_DTYPES, seed=2)
    original = safetensors.numpy.save(tensors)
    msg = ok("pack", "-format", "safetensors", "-", stdin=original)
    check_message(msg, tensors)
    assert ok("unpack", "-format", "safetensors", "-", stdin=msg) == original
    # A message that the Python package wrote unpacks too.
    assert ok("unpack", "-format", "safetensors", "-", stdin=viacodec.dumps(tensors)) == original


@pytest.mark.parametrize("compressed", [False, True], ids=["savez", "savez_compressed"])
def test_npz_from_numpy_read_back_bit_exact(tmp_path, compressed):
    tensors = model(NPY_DTYPES, seed=3)
    tensors["fortran"] = np.asfortranarray(random_array(np.random.default_rng(4), np.float32, (3, 4)))
    big_endian = random_array(np.random.default_rng(5), np.dtype(">i4"), (5,))
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "m.npz", big_endian=big_endian, **tensors)

    ok("pack", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.cbor"))
    body = viacodec.loads((tmp_path / "m.cbor").read_bytes())
    check_message((tmp_path / "m.cbor").read_bytes(), {**tensors, "big_endian": big_endian.astype("<i4")})
    assert body["fortran"].flags.f_contiguous

    ok("unpack", str(tmp_path / "m.cbor"), "-o", str(tmp_path / "back.npz"))
    with np.load(tmp_path / "back.npz") as back:
        assert set(back.files) == set(tensors) | {"big_endian"}
        for name, a in tensors.items():
            assert same_bits(back[name], a), name
        assert back["fortran"].flags.f_contiguous
        assert np.array_equal(back["big_endian"], big_endian) and back["big_endian"].dtype == np.dtype("<i4")

    # Each member is what numpy.save writes for that array.
    with zipfile.ZipFile(tmp_path / "back.npz") as z:
        for name, a in tensors.items():
            f = io.BytesIO()
            np.save(f, a)
            assert z.read(name + ".npy") == f.getvalue(), name


@pytest.mark.parametrize(
    "dtype, out, word",
    [
        (np.complex128, "x.safetensors", "complex128"),
        (ml_dtypes.bfloat16, "x.npz", "bfloat16"),
        (ml_dtypes.float8_e4m3fn, "x.npz", "float8_e4m3fn"),
        (ml_dtypes.float8_e5m2, "x.npz", "float8_e5m2"),
    ],
)
def test_unpack_refuses_what_a_format_cannot_carry(tmp_path, dtype, out, word):
    (tmp_path / "m.cbor").write_bytes(viacodec.dumps({"x": np.zeros(2, dtype)}))
    r = run("unpack", str(tmp_path / "m.cbor"), "-o", str(tmp_path / out))
    assert r.returncode == 1 and r.stdout == b""
    assert r.stderr.count(b"\n") == 1 and f'cannot carry {word} (tensor "x")'.encode() in r.stderr
    assert not (tmp_path / out).exists()


def test_pack_refuses_numpy_void_arrays(tmp_path):
    """numpy saves bfloat16 as raw two-byte void: its type is lost."""
    np.savez(tmp_path / "m.npz", w=np.zeros(2, ml_dtypes.bfloat16))
    r = run("pack", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.cbor"))
    assert r.returncode == 1 and r.stderr.count(b"\n") == 1 and b'"<V2" is not supported' in r.stderr
    assert not (tmp_path / "m.cbor").exists()
