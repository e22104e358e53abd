"""dumps and loads: the inline codec over the C ABI.

dumps writes the value's skeleton with cbor2 (_skeleton), passes it with
one vc_slot per numpy array (pointing at the array's own memory) to
vc_encode, and has vc_message_copy write the message straight into the
bytes object it returns: array bytes are copied once.

loads has vc_decode parse the message (the Go core, zero-copy), allocates
one numpy array (or bytes object) per slot as the descriptors say, has
vc_decode_fill copy the bytes straight into them, and reads the skeleton
with cbor2: array bytes are copied once. Arrays shorter than
ARRAY_SLOT_MIN bytes come inside the skeleton instead, which costs less
than a slot each.

Both pass references through: a LazyRef in the value is written as a
lazy ref, and loads(pass_through=True) turns references into LazyRefs.
Downloading them needs a Host (_host.py).
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

def dumps(obj: Any, *, registry: Optional[Registry] = None, max_depth: int = 0) -> bytes:
    """Encodes obj as a viacodec message, arrays inline.

    A LazyRef (from loads(pass_through=True)) is written again as the
    reference it is: a relay forwards a message without its arrays' bytes.
    To send arrays by reference, use Host.dumps.

    obj is a tree of None, bool, int (any size), float, str, bytes-like,
    list, tuple (encoded as a list), dict (any int, str, bytes, bool or
    None keys), Map, numpy arrays and scalars of every dtype viacodec
    knows, CPU torch tensors of those dtypes (sent from their own memory;
    see _torch.py), Object, and instances of registered classes. Floats keep their
    width: float is float64, numpy.float32 float32, numpy.float16 float16.
    numpy scalars without a CBOR scalar form (complex, bfloat16, float8)
    and Python complex encode as 0-d arrays. Non-contiguous arrays are
    copied to C order first; Fortran-ordered arrays are sent column-major
    without a copy; big-endian arrays are converted to little-endian.

    max_depth bounds nesting as the core counts it (1 to 4096; 0, the
    default, is the core's default, 128); deeper
    values, and cycles, raise LimitError. Map, Object and registered
    classes are written by Python code, so Python's recursion limit also
    bounds how deeply they nest in one another (about 480 levels with the
    default limit of 1000; LimitError beyond); lists, tuples and dicts
    take the whole range. Anything else raises InvalidError.

    >>> import numpy as np, viacodec
    >>> msg = viacodec.dumps({"round": 3, "w": np.arange(4, dtype=np.float32)})
    >>> len(msg)
    42
    """
    max_depth = check_max_depth(max_depth)
    lib = _ffi.lib()
    skel, w = _skeleton.write(obj, registry if registry is not None else default_registry, max_depth, BYTES_SLOT_MIN)
    cslots, keep = slot_table(w)
    handle, size = lib.encode(skel, len(skel), cslots, len(w.keep), _ffi.VcEncOptions(max_depth))
    out = copy_message(lib, handle, size)
    del keep, w
    return out


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


def loads(
    data: Any,
    *,
    pass_through: bool = False,
    registry: Optional[Registry] = None,
    unknown: str = "object",
    max_depth: int = 0,
    max_elements: int = 0,
    max_byte_len: int = 0,
    max_message_size: int = 0,
    max_array_bytes: int = 0,
    tensors: str = "numpy",
) -> Any:
    """Decodes a viacodec message (any bytes-like object).

    Arrays come back as new, writable numpy arrays (column-major ones in
    Fortran order), float16 and float32 scalars as numpy.float16 and
    numpy.float32, float64 as float, lists as lists, maps with text keys as
    dicts and other maps as Map. A typed object becomes an instance of its
    registered class, or an Object when its name is not registered
    (unknown="object", the default) or UnregisteredError
    (unknown="error"). bfloat16 and float8 arrays need ml_dtypes.
    Maps whose keys are all ints and strings come back as dicts too.

    tensors="torch" gives torch tensors instead of numpy arrays (every
    dtype, bfloat16 and float8 without ml_dtypes): torch allocates them
    and the library writes the bytes straight into them.

    A message that holds references (encoded by Host.dumps) decodes only
    with pass_through=True, which gives a LazyRef for each referenced
    array and downloads nothing (a relay's mode); Host.loads downloads
    them. Without pass_through such a message raises InvalidError.

    The limits default (0) to the core's: max_depth 128, max_elements
    2^24 per list or map, max_byte_len 4 GiB per string, max_message_size
    16 GiB, max_array_bytes 64 GiB. Bad input raises the ViacodecError
    subclass of its kind, with .offset where the input is at fault.

    >>> import numpy as np, viacodec
    >>> v = viacodec.loads(viacodec.dumps({"round": 3, "w": np.arange(4, dtype=np.float32)}))
    >>> v["round"], v["w"]
    (3, array([0., 1., 2., 3.], dtype=float32))
    """
    opts = dec_options(unknown, pass_through, (max_depth, max_elements, max_byte_len, max_message_size, max_array_bytes))
    torch = _torch.check_option(tensors)
    lib = _ffi.lib()
    view = _input_view(data)
    try:
        handle, skel_addr, skel_len, specs, nslots = lib.decode(view.ctypes.data, view.nbytes, opts)
    except InvalidError as e:
        if "holds references" in e.message:
            raise InvalidError(
                "viacodec: the message holds references: decode it with Host.loads (or resolve it with "
                "viacodec.resolve after loads(..., pass_through=True)) to download them, or with "
                "pass_through=True to keep them as LazyRefs"
            ) from None
        raise
    try:
        values, dst, _ = alloc_slots(specs, nslots, torch)
        if nslots:
            lib.decode_fill(handle, dst, nslots)
        return decode_skeleton(skel_addr, skel_len, values, registry, unknown, torch=torch)
    finally:
        lib.release(handle)
        del view


def dec_options(unknown: str, pass_through: bool, limits: tuple) -> _ffi.VcDecOptions:
    """Checks loads' options and returns them as a vc_dec_options."""
    if unknown not in ("object", "error"):
        raise InvalidError(f'viacodec: unknown={unknown!r}: use "object" or "error"')
    check_max_depth(limits[0])
    for v in limits:
        if type(v) is not int or v < 0:
            raise InvalidError(f"viacodec: limit {v!r} is not a non-negative int")
    return _ffi.VcDecOptions(*limits, BYTES_SLOT_MIN, 1 if pass_through else 0, ARRAY_SLOT_MIN)


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
    table = np.frombuffer((ctypes.c_char * (n * _ffi.SLOT_DTYPE.itemsize)).from_address(ctypes.addressof(specs.contents)), _ffi.SLOT_DTYPE)
    dtypes = table["dtype"].tolist()
    orders = table["order"].tolist()
    ndims = table["ndim"].tolist()
    nbytes = table["nbytes"].tolist()
    refs = int(np.count_nonzero(table["flags"] & _ffi.SLOT_REF))
    shapes = _shapes(table, ndims)
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
    return values, _SlotTable(dst), refs


class _SlotTable:
    """A vc_slot table in numpy memory, passed to ctypes as a vc_slot*
    (keeping the memory alive while it is referenced)."""

    __slots__ = ("table", "_as_parameter_")

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self._as_parameter_ = ctypes.cast(table.ctypes.data, ctypes.POINTER(_ffi.VcSlot))


def _shapes(table: np.ndarray, ndims: List[int]) -> List[tuple]:
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


def _input_view(data: Any) -> np.ndarray:
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
