"""Slots: how a value's arrays (and long byte strings) cross the C ABI.

A value crosses as a skeleton (its CBOR, written and read by cbor2 in
_skeleton) with a slot tag where each array stands, and a table of
vc_slot descriptors, one per slot: the array's memory, dtype, order and
shape. Encoding points the descriptors at the caller's arrays (no copy);
decoding reads the descriptors the library wrote, allocates a numpy array
(or bytes object) for each, and hands their memory back for the library
to fill. Both dumps/loads (_codec) and the Host (_host, _fetch) cross
this way.
"""

from __future__ import annotations

import ctypes
import itertools
import operator
from typing import Any, List, Optional, Tuple

import numpy as np

from . import _dtypes, _ffi, _skeleton, _torch
from ._errors import InvalidError, MismatchError, UnsupportedTypeError
from ._types import Registry, default_registry

#: Byte strings at least this long travel as slots, not inside the
#: skeleton, so that their bytes are copied once each way.
BYTES_SLOT_MIN = 64 * 1024

#: Inline arrays shorter than this come back inside the skeleton rather
#: than as slots: below it, copying the bytes twice more costs less than
#: a slot's descriptor and allocation.
ARRAY_SLOT_MIN = 4 * 1024


def check_max_depth(max_depth: Any) -> int:
    """Checks max_depth against the core's range and returns it, 0 being
    the core's default."""
    lim = _ffi.lib().limits()
    if type(max_depth) is not int or not 0 <= max_depth <= lim.max_depth_limit:
        raise InvalidError(f"viacodec: max_depth {max_depth!r} is outside 1..{lim.max_depth_limit} (0: the default)")
    return max_depth or lim.max_depth_default


def copy_message(lib: _ffi.Library, handle: int, size: int) -> bytes:
    """Copies the message of handle into a new bytes object and releases
    the handle."""
    try:
        out, address = _ffi.new_buffer(size)
        lib.message_copy(handle, address, size)
    finally:
        lib.release(handle)
    return out if type(out) is bytes else bytes(out)


def slot_table(w: _skeleton.Writer) -> Any:
    """Returns a pointer to the vc_slot table of w's slots, and what keeps
    its memory alive for the call. Built column by column: a per-field
    ctypes assignment costs more than the rest of a small array's
    encoding."""
    keep = w.keep
    n = len(keep)
    if not n:
        return None, None
    table = np.zeros(n, _ffi.SLOT_DTYPE)
    table["data"] = _skeleton.addresses(keep)
    table["nbytes"] = np.fromiter(map(_nbytes, keep), dtype=np.uint64, count=n)
    table["dtype"] = w.codes
    table["order"] = w.orders
    ndims = np.fromiter(map(len, w.shapes), dtype=np.int64, count=n)
    table["ndim"] = ndims
    total = int(ndims.sum())
    dims = np.fromiter(itertools.chain.from_iterable(w.shapes), dtype=np.int64, count=total)
    if total:
        starts = np.cumsum(ndims) - ndims  # each slot's first dimension in dims
        table["shape"] = np.where(ndims > 0, dims.ctypes.data + 8 * starts, 0)
    return ctypes.cast(table.ctypes.data, ctypes.POINTER(_ffi.VcSlot)), (table, dims, keep)


_nbytes = operator.attrgetter("nbytes")


def dec_options(unknown: str, pass_through: bool, limits: tuple, all_arrays: bool = False) -> _ffi.VcDecOptions:
    """Checks loads' options and returns them as a vc_dec_options; with
    all_arrays, every array is a slot (an offloaded decode puts them all
    in its file)."""
    if unknown not in ("object", "error"):
        raise InvalidError(f'viacodec: unknown={unknown!r}: use "object" or "error"')
    check_max_depth(limits[0])
    for v in limits:
        if type(v) is not int or v < 0:
            raise InvalidError(f"viacodec: limit {v!r} is not a non-negative int")
    return _ffi.VcDecOptions(*limits, BYTES_SLOT_MIN, 1 if pass_through else 0, 0 if all_arrays else ARRAY_SLOT_MIN)


def decode_skeleton(skel_addr: int, skel_len: int, values: List[Any], registry: Optional[Registry], unknown: str, host: Any = None, torch: bool = False) -> Any:
    """Reads the skeleton a decode handle owns, with the filled slots."""
    skel = memoryview((ctypes.c_char * skel_len).from_address(skel_addr)).cast("B")
    slots = [v if type(v) is not bytearray else bytes(v) for v in values]
    try:
        return _skeleton.read(skel, slots, registry if registry is not None else default_registry, unknown == "error", host, torch)
    finally:
        skel.release()


def alloc_slots(specs: Any, n: int, torch: bool = False) -> Tuple[List[Any], Any, int]:
    """Allocates a numpy array (a torch tensor with torch, or a bytes
    object) for each of the n slot descriptors at specs; returns them, the vc_slot table of their
    memory, for the library to fill (bytes objects are filled in place
    before anyone else sees them), and how many slots are downloads."""
    if n == 0:
        return [], None, 0
    table = spec_table(specs, n)
    dtypes = table["dtype"].tolist()
    orders = table["order"].tolist()
    ndims = table["ndim"].tolist()
    nbytes = table["nbytes"].tolist()
    refs = int(np.count_nonzero(table["flags"] & _ffi.SLOT_REF))
    shapes = slot_shapes(table, ndims)
    values: List[Any] = [None] * n
    addresses = [0] * n
    for i in range(n):
        if dtypes[i] == _dtypes.BYTES:
            if nbytes[i]:
                values[i], addresses[i] = _ffi.new_buffer(nbytes[i])
            else:
                values[i] = b""
            continue
        if torch:
            values[i], addresses[i] = _torch.empty(dtypes[i], shapes[i], orders[i])
            continue
        dt = _dtypes.dtype_of(dtypes[i])  # its errors are ValueErrors too: not in the try
        try:
            a = np.empty(shapes[i], dt, order="F" if orders[i] == 1 else "C")
        except ValueError as e:  # e.g. more dimensions than numpy has
            raise MismatchError(f"viacodec: cannot allocate a {shapes[i]} array: {e}") from e
        values[i] = a
        if nbytes[i]:
            addresses[i] = _skeleton.address(a)
    dst = table.copy()
    dst["data"] = addresses
    return values, SlotTable(dst), refs


def spec_table(specs: Any, n: int) -> np.ndarray:
    """The n slot descriptors a decode handle owns at specs, as a numpy
    array of SLOT_DTYPE viewing them (n > 0)."""
    return np.frombuffer((ctypes.c_char * (n * _ffi.SLOT_DTYPE.itemsize)).from_address(ctypes.addressof(specs.contents)), _ffi.SLOT_DTYPE)


class SlotTable:
    """A vc_slot table in numpy memory, passed to ctypes as a vc_slot*
    (keeping the memory alive while it is referenced)."""

    __slots__ = ("table", "_as_parameter_")

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self._as_parameter_ = ctypes.cast(table.ctypes.data, ctypes.POINTER(_ffi.VcSlot))


def slot_shapes(table: np.ndarray, ndims: List[int]) -> List[tuple]:
    """The shape of each slot of a descriptor table."""
    nd = np.asarray(ndims, dtype=np.int64)
    total = int(nd.sum())
    if total == 0:
        return [()] * len(ndims)
    ptrs = table["shape"].astype(np.int64)
    first = int(ptrs[np.argmax(nd > 0)])
    starts = np.cumsum(nd) - nd
    if np.all((ptrs == first + 8 * starts) | (nd == 0)):
        # All shapes lie in one array, in slot order (as the library
        # writes them): read it at once.
        dims = np.frombuffer((ctypes.c_char * (8 * total)).from_address(first), np.int64).tolist()
        return [tuple(dims[k : k + n]) for k, n in zip(starts.tolist(), ndims)]
    return [tuple((ctypes.c_int64 * n).from_address(p)) if n else () for p, n in zip(ptrs.tolist(), ndims)]


def input_view(data: Any) -> np.ndarray:
    """A uint8 array viewing data's bytes without a copy (copying only a
    non-contiguous buffer). The view keeps data alive and, for a
    bytearray, unresizable while the library reads it."""
    if isinstance(data, str) or data is None:
        raise UnsupportedTypeError(f"viacodec: loads needs a bytes-like object, not {type(data).__qualname__}")
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        pass
    try:
        mv = memoryview(data)
    except TypeError:
        raise UnsupportedTypeError(f"viacodec: loads needs a bytes-like object, not {type(data).__qualname__}") from None
    return np.frombuffer(mv.tobytes(), dtype=np.uint8)
