"""Shared helpers of the viacodec test suite.

Run with `make test-python`, which builds libviacodec.so into the package
and runs pytest in .venv.
"""

from __future__ import annotations

import pathlib
import struct
from typing import Any

import numpy as np
import pytest

import viacodec

REPO = pathlib.Path(__file__).resolve().parents[3]
GOLDEN = REPO / "testdata" / "golden"
PKG_DIR = pathlib.Path(viacodec.__file__).resolve().parent


def same(a: Any, b: Any) -> bool:
    """Bit-exact equality of two decoded values: same types, same dtypes,
    shapes and bytes for arrays, same bits for floats (NaN payloads and
    -0.0 included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes(order="A") == b.tobytes(order="A") and (
            a.flags.f_contiguous == b.flags.f_contiguous
        )
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):  # Map is a list too
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, viacodec.Object):
        return a.name == b.name and same(a.data, b.data)
    return bool(a == b)


@pytest.fixture(autouse=True)
def no_leaked_handles():
    """Every test leaves the library's handle table as it found it."""
    from viacodec import _ffi

    lib = _ffi.lib()
    before = lib.vc_handle_count()
    yield
    assert lib.vc_handle_count() == before, "a test leaked library handles"
