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

from typing import Any, Optional

from . import _ffi, _skeleton, _torch
from ._errors import InvalidError
from ._slots import BYTES_SLOT_MIN, alloc_slots, check_max_depth, copy_message, dec_options, decode_skeleton, input_view, slot_table
from ._types import Registry, default_registry


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
    view = input_view(data)
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


