"""Faulting in a download's destination while the download starts.

Host.loads allocates its numpy arrays fresh: the first write to each page
faults, in the middle of the download, and on a small machine that costs
as much as the transfer (about 0.3-0.9 s per GiB here). A thread asks the
kernel to fault the pages in ahead of the download (madvise
MADV_POPULATE_WRITE, Linux 5.14), in chunks, and stops as soon as the
download is over. The call changes no byte, so it
is safe while the download writes; where it is not available (older
kernels, other systems) nothing happens.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Any, List, Optional

import numpy as np

from . import _skeleton, _torch

_MADV_POPULATE_WRITE = 23
_CHUNK = 32 << 20  # bytes per call: how soon a finished download stops the thread
_MIN = 8 << 20  # smaller destinations fault in fast enough on their own

_madvise: Optional[Any] = None
if sys.platform.startswith("linux"):
    try:
        _madvise = ctypes.CDLL(None, use_errno=True).madvise
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - no libc symbol
        _madvise = None

_PAGE = 4096
try:
    _PAGE = os.sysconf("SC_PAGE_SIZE")
except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
    pass


def start(values: List[Any], done: threading.Event) -> None:
    """Faults in the numpy arrays and torch tensors among values, until done is set."""
    if _madvise is None:
        return
    ranges = []
    for a in values:
        if isinstance(a, np.ndarray):
            addr, nbytes = _skeleton.address(a), a.nbytes
        elif _torch.is_tensor(a):
            addr, nbytes = a.data_ptr(), a.nbytes
        else:
            continue
        if nbytes >= _MIN:
            lo, hi = (addr + _PAGE - 1) & ~(_PAGE - 1), (addr + nbytes) & ~(_PAGE - 1)
            if hi > lo:
                ranges.append((lo, hi, a))
    if ranges:
        threading.Thread(target=_run, args=(ranges, done), name="viacodec-prefault", daemon=True).start()


def _run(ranges: list, done: threading.Event) -> None:
    for lo, hi, _ in ranges:  # the arrays stay alive with the list
        while lo < hi:
            if done.is_set():
                return
            n = min(_CHUNK, hi - lo)
            if _madvise(lo, n, _MADV_POPULATE_WRITE) != 0:
                return  # not supported here, or the memory went away
            lo += n
