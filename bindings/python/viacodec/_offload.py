"""Offloaded decoding: arrays that land in a file and are mapped, not held.

The library decides everything (vc_decode_offload): it creates one
safetensors file in the directory, names each array by its path in the
message, writes the header, and downloads (and copies) every array
straight into the file. This module only maps what it made: one read-only
numpy.memmap per array, each holding the file's owner, which removes the
file once the last array that views it is released (unless kept).
"""

from __future__ import annotations

import os
import weakref
from typing import Any, List, Tuple

import numpy as np

from . import _dtypes, _ffi
from ._errors import InvalidError, MismatchError
from ._interrupt import in_worker
from ._slots import SlotTable, slot_shapes


class OffloadedFile:
    """The file an offloaded decode wrote: removed when the last array
    viewing it is released, unless kept. Each array holds it as
    ``array.viacodec_file``; ``array.filename`` is its path too."""

    __slots__ = ("path", "keep", "__weakref__")

    def __init__(self, path: str, keep: bool) -> None:
        self.path = path
        self.keep = keep
        if not keep:
            weakref.finalize(self, _remove, path)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def check_dir(offload: Any) -> str:
    """Checks the offload argument: a directory path."""
    if not isinstance(offload, (str, os.PathLike)):
        raise InvalidError(f"viacodec: offload must be a directory path, not {type(offload).__qualname__}")
    return os.fspath(offload)


def fill(lib: _ffi.Library, dh: int, table: np.ndarray, n: int, directory: str, keep: bool, ns: int) -> List[Any]:
    """Has the library land decode handle dh's arrays in a file in
    directory, then maps them; byte-string slots are filled in memory.
    table is the handle's slot descriptors (numpy, SLOT_DTYPE)."""
    path, offsets = in_worker(lambda: lib.decode_offload(dh, directory, n, ns), lambda: lib.decode_cancel(dh))
    owner = OffloadedFile(path, keep)
    values: List[Any] = [None] * n
    dtypes = table["dtype"].tolist()
    orders = table["order"].tolist()
    nbytes = table["nbytes"].tolist()
    dims = slot_shapes(table, table["ndim"].tolist())
    fill_dst = None
    for i in range(n):
        if offsets[i] < 0:  # a byte string, filled below
            if dtypes[i] != _dtypes.BYTES:  # pragma: no cover - the library puts every array in the file
                raise MismatchError(f"viacodec: slot {i} is an array but not in the offloaded file")
            if fill_dst is None:
                fill_dst = table.copy()
                fill_dst["data"] = 0  # NULL: skipped
                fill_dst["nbytes"] = 0
            if nbytes[i]:
                values[i], fill_dst["data"][i] = _ffi.new_buffer(nbytes[i])
                fill_dst["nbytes"][i] = nbytes[i]
            else:
                values[i] = b""
            continue
        dt = _dtypes.dtype_of(dtypes[i])
        order = "F" if orders[i] == 1 else "C"
        if nbytes[i] == 0:  # nothing to map
            values[i] = np.empty(dims[i], dt, order=order)
            continue
        a = np.memmap(path, dtype=dt, mode="r", offset=offsets[i], shape=dims[i], order=order)
        a.viacodec_file = owner
        values[i] = a
    if fill_dst is not None:
        lib.decode_fill(dh, SlotTable(fill_dst), n)
    return values
