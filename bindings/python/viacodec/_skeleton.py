"""The skeleton: how a value crosses the C ABI (docs/wire-format.md §4.1).

Go shapes the skeleton so that cbor2's C extension reads and writes it
with a few hooks: the value as plain CBOR, with private tags for what
cbor2 would lose (float16 and float32 scalars, maps whose keys are not
all text, small inline arrays, lazy refs) and the slot tag around the
index of each array or long byte string that crosses out of line, as a
C descriptor of the memory holding it (_codec.py). Go decodes the
skeleton Python writes and encodes the message canonically, so nothing
here sorts keys, chooses head widths or checks the wire format: this
module only maps Python types to skeleton items and back.
"""

from __future__ import annotations

import array
import collections
import ctypes
import datetime
import decimal
import email.mime.text
import fractions
import ipaddress
import re
import struct
import sys
import types
import uuid
from typing import Any, Callable, Dict, List, Sequence, Tuple

import cbor2
import numpy as np
from cbor2 import _cbor2  # the C extension: import fails without it

from . import _dtypes, _ffi, _torch
from ._errors import InvalidError, LimitError, MismatchError, UnregisteredError, UnsupportedTypeError, ViacodecError
from ._refs import BatchDescriptor, LazyRef
from ._types import MAP_CLASSES, Map, Object, Registry

TAG_OBJECT = 0x56430001  # [name, data]
TAG_SLOT = 0x56430003  # index
TAG_FLOAT16 = 0x56430100  # bits
TAG_FLOAT32 = 0x56430101  # bits
TAG_PAIRS = 0x56430102  # [key, value, key, value, ...]
TAG_ARRAY = 0x56430103  # [dtype code, shape, order, data]
TAG_LAZYREF = 0x56430104  # [source, ref_id, token, items, bytes, item, dtype, shape, order, ?holder] or [batch number, item, dtype, shape, order]
TAG_ARRAY0 = 0x56430180  # plus the dtype code: a 0-d array's element bytes


_CBOR2_C = _cbor2  # kept for the test that cbor2's C extension is in use
_pack_double = struct.Struct(">Bd").pack

# Types cbor2 would encode as tags of its own, or as lists and maps (it
# takes any sequence and mapping), which are not in the value model: they
# go through the registry or fail.
_CBOR2_EXTRAS = (
    range,
    collections.deque,
    collections.UserList,
    collections.UserDict,
    collections.ChainMap,
    types.MappingProxyType,
    array.array,
    datetime.datetime,
    datetime.date,
    decimal.Decimal,
    fractions.Fraction,
    uuid.UUID,
    set,
    frozenset,
    re.Pattern,
    email.mime.text.MIMEText,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
    cbor2.CBORTag,
    cbor2.CBORSimpleValue,
    type(cbor2.undefined),
)


def _float(enc: Any, v: float) -> None:
    # cbor2 writes NaN and infinities as float16, losing NaN payloads;
    # a skeleton's float of any width is a float64, so write the bits.
    enc.write(_pack_double(0xFB, v))


def _stack_depth() -> int:
    f, n = sys._getframe(), 0
    while f is not None:
        f, n = f.f_back, n + 1
    return n


class Writer:
    """Writes one value's skeleton and collects its slots: keep[i] is the
    contiguous little-endian buffer of slot i (a numpy array), codes[i]
    its dtype code, orders[i] its order (0 C, 1 Fortran), shapes[i] its
    shape (() for a byte string)."""

    __slots__ = ("registry", "max_depth", "bytes_slot_min", "keep", "codes", "orders", "shapes", "_level", "_room", "_batches")

    def __init__(self, registry: Registry, max_depth: int, bytes_slot_min: int) -> None:
        self.registry = registry
        self.max_depth = max_depth
        self.bytes_slot_min = bytes_slot_min
        self.keep: List[np.ndarray] = []
        self.codes: List[int] = []
        self.orders: List[int] = []
        self.shapes: List[Tuple[int, ...]] = []
        self._level = 0  # nesting of the hooks that encode a container
        # Map, Object and registered classes are encoded by Python code,
        # each level a few frames deep: stop before Python's recursion
        # limit does, with a clear error.
        self._room = (sys.getrecursionlimit() - _stack_depth()) // 2 - 20
        # The batch descriptors written in full, by number: a LazyRef of
        # one of them names it by its number (docs/wire-format.md §4.1).
        self._batches: Dict[BatchDescriptor, int] = {}

    def skeleton(self, value: Any) -> bytes:
        """Returns the skeleton of value; the slots are in the columns."""
        # cbor2 looks its encoders up by exact type: subclasses of float and
        # complex that numpy has are named too.
        encoders: Dict[type, Callable[[Any, Any], None]] = {
            float: _float,
            np.float64: _float,
            np.complex128: self._other,
            bytes: self._bytes,
            bytearray: self._bytes,
            memoryview: self._memoryview,
            np.ndarray: self._array_hook(),
            Object: self._object,
            LazyRef: self._lazyref,
            complex: self._complex,
        }
        for t in MAP_CLASSES:
            encoders[t] = self._pairs
        for t in _CBOR2_EXTRAS:
            encoders[t] = self._other
        for t in self.registry.classes():
            encoders[t] = self._other
        for t in _torch.tensor_types():
            encoders[t] = self._tensor
        try:
            return cbor2.dumps(value, encoders=encoders, default=self._other)
        except cbor2.CBOREncodeValueError as e:
            if "cyclic" in str(e):
                raise LimitError(f"viacodec: value nests deeper than max_depth {self.max_depth} (a cycle?)") from None
            raise InvalidError(f"viacodec: cannot encode the value: {e}") from None
        except UnicodeEncodeError as e:
            raise InvalidError(f"viacodec: string {e.object!r} is not valid UTF-8 (it holds a lone surrogate)") from None
        except RecursionError:
            raise LimitError(self._too_deep()) from None

    def _too_deep(self) -> str:
        return (
            "viacodec: value nests too deeply for Python's recursion limit: Map, Object and registered "
            f"classes nest at most {max(self._room, 0)} levels in dumps (lists, tuples and dicts up to max_depth)"
        )

    def _enter(self) -> None:
        self._level += 1
        if self._level > self.max_depth:
            raise LimitError(f"viacodec: value nests deeper than max_depth {self.max_depth} (a cycle?)")
        if self._level > self._room:
            raise LimitError(self._too_deep())

    def _array_hook(self) -> Callable[[Any, np.ndarray], None]:
        """The hook of numpy arrays: a closure over the columns, as a
        thousand arrays call it a thousand times."""
        codes_get, tags, slow = _dtypes.CODES.get, _SLOT_TAGS, self._array
        keep, codes, orders, shapes = self.keep, self.codes, self.orders, self.shapes

        def hook(enc: Any, a: np.ndarray) -> None:
            code = codes_get(a.dtype)
            if code is None or not a.ndim or not a.flags.c_contiguous:
                slow(enc, a)
                return
            n = len(keep)
            enc.write(tags[n] if n < _CACHED_SLOT_TAGS else _slot_tag(n))
            keep.append(a)
            codes.append(code)
            orders.append(0)
            shapes.append(a.shape)

        return hook

    def _array(self, enc: Any, a: np.ndarray) -> None:
        code = _dtypes.CODES.get(a.dtype)
        if code is None:
            code = _dtypes.code_of(a.dtype)
            if code is None:
                raise UnsupportedTypeError(f"viacodec: cannot encode a numpy array of dtype {a.dtype}")
            a = a.astype(a.dtype.newbyteorder("<"))  # big-endian: swap into a copy
        if not a.ndim:  # 0-d: the element itself, no slot
            enc.encode_semantic(TAG_ARRAY0 + code, a.tobytes())
            return
        if a.flags.c_contiguous:
            order = 0
        elif a.flags.f_contiguous:
            order = 1  # column-major, sent as it is
        else:
            a = np.ascontiguousarray(a)
            order = 0
        enc.write(_slot_tag(len(self.keep)))
        self.keep.append(a)
        self.codes.append(code)
        self.orders.append(order)
        self.shapes.append(a.shape)

    def _tensor(self, enc: Any, t: Any) -> None:
        buf, code, shape, order = _torch.slot(t)
        if not shape:  # 0-d: the element itself, as for numpy
            enc.encode_semantic(TAG_ARRAY0 + code, buf.tobytes())
            return
        enc.write(_slot_tag(len(self.keep)))
        self.keep.append(buf)
        self.codes.append(code)
        self.orders.append(order)
        self.shapes.append(shape)

    def _bytes(self, enc: Any, b: Any) -> None:
        if len(b) >= self.bytes_slot_min:
            enc.write(_slot_tag(len(self.keep)))
            self.keep.append(np.frombuffer(b, np.uint8))
            self.codes.append(_dtypes.BYTES)
            self.orders.append(0)
            self.shapes.append(())
        else:
            enc.encode_bytes(b if type(b) is bytes else bytes(b))

    def _memoryview(self, enc: Any, m: memoryview) -> None:
        self._bytes(enc, m.cast("B") if m.c_contiguous else m.tobytes())

    def _pairs(self, enc: Any, m: Map) -> None:
        self._enter()
        try:
            enc.encode_semantic(TAG_PAIRS, [x for pair in m for x in pair])
        finally:
            self._level -= 1

    def _object(self, enc: Any, o: Object) -> None:
        self._write_object(enc, o.name, o.data)

    def _write_object(self, enc: Any, name: Any, data: Any) -> None:
        if type(name) is not str or not name:
            raise InvalidError(f"viacodec: type name {name!r} is not a non-empty string")
        self._enter()
        try:
            enc.encode_semantic(TAG_OBJECT, [name, data])
        finally:
            self._level -= 1

    def _lazyref(self, enc: Any, r: LazyRef) -> None:
        b = r._batch
        if not isinstance(b, BatchDescriptor):
            raise InvalidError("viacodec: a LazyRef without a batch descriptor")
        n = self._batches.get(b)
        if n is not None:
            enc.encode_semantic(TAG_LAZYREF, [n, r._item, r._dtype, list(r._shape), r._order])
            return
        self._batches[b] = len(self._batches)
        v = [b.source, b.ref_id, b.token, b.items, b.nbytes, r._item, r._dtype, list(r._shape), r._order]
        enc.encode_semantic(TAG_LAZYREF, v + [b.holder] if b.holder else v)

    def _complex(self, enc: Any, c: complex) -> None:
        self._array(enc, np.array(c, dtype=np.complex128))

    def _other(self, enc: Any, v: Any) -> None:
        """Registered classes, numpy scalars and subclasses of the value
        model's types; anything else is an error."""
        t = type(v)
        entry = self.registry.by_type(t)
        if entry is not None:
            try:
                data = entry.to_data(v)
            except ViacodecError:
                raise
            except Exception as e:
                raise InvalidError(f"viacodec: decompose {entry.name!r}: {e}") from e
            self._write_object(enc, entry.name, data)
        elif isinstance(v, np.generic):
            self._scalar(enc, v)
        elif isinstance(v, np.ndarray):
            if isinstance(v, np.ma.MaskedArray):
                raise UnsupportedTypeError("viacodec: cannot encode a masked array (send .data and .mask)")
            self._array(enc, v)
        elif isinstance(v, Map):
            self._pairs(enc, v)
        elif isinstance(v, Object):
            self._object(enc, v)
        elif isinstance(v, LazyRef):
            self._lazyref(enc, v)
        elif _torch.is_tensor(v):
            self._tensor(enc, v)
        else:
            raise UnsupportedTypeError(f"viacodec: cannot encode {t.__module__}.{t.__qualname__}: not in the value model and not registered")

    def _scalar(self, enc: Any, v: np.generic) -> None:
        if isinstance(v, np.bool_):
            enc.encode(bool(v))
        elif isinstance(v, np.integer):
            enc.encode(int(v))
        elif isinstance(v, np.float16):
            enc.encode_semantic(TAG_FLOAT16, int(v.view(np.uint16)))
        elif isinstance(v, np.float32):
            enc.encode_semantic(TAG_FLOAT32, int(v.view(np.uint32)))
        elif _dtypes.code_of(v.dtype) is not None:
            # complex64/128, bfloat16, float8: no CBOR scalar; a 0-d array.
            self._array(enc, np.asarray(v))
        else:
            raise UnsupportedTypeError(f"viacodec: cannot encode a numpy {v.dtype} scalar")


_SLOT_HEAD = cbor2.dumps(cbor2.CBORTag(TAG_SLOT, 0))[:-1]
_CACHED_SLOT_TAGS = 1 << 12  # the slot tags of the first arrays of a message, written often
_SLOT_TAGS = tuple(_SLOT_HEAD + cbor2.dumps(i) for i in range(_CACHED_SLOT_TAGS))


def _slot_tag(i: int) -> bytes:
    """The slot tag around i, as bytes."""
    return _SLOT_TAGS[i] if i < _CACHED_SLOT_TAGS else _SLOT_HEAD + cbor2.dumps(i)


_addressof = ctypes.addressof
_c_byte_from_buffer = ctypes.c_byte.from_buffer
_void_at = ctypes.c_void_p.from_address


def _find_data_offset() -> int:
    """Where an ndarray object holds its data pointer (numpy's
    PyArrayObject_fields.data, just after the object header), found by
    looking, so that address() reads it in one step; 0 when not found."""
    probes = [np.arange(3, dtype=np.int64), np.zeros((2, 2), np.float32, order="F")[:, 1]]
    for off in range(8, 65, 8):
        if all(_void_at(id(a) + off).value == a.ctypes.data for a in probes):
            return off
    return 0


_DATA_OFFSET = _find_data_offset()


def addresses(arrays: List[np.ndarray]) -> List[int]:
    """address() of each array, the hot loop of Host.dumps."""
    if _DATA_OFFSET:
        off = _DATA_OFFSET
        return [_void_at(id(a) + off).value or 0 for a in arrays]
    return [address(a) for a in arrays]


def address(a: np.ndarray) -> int:
    """The address of a's first byte (0 for no byte). Read from the array
    object itself where numpy keeps it (checked at import), five times
    faster than a.ctypes.data: Host.dumps of a thousand arrays spends
    most of its Python time here."""
    if not a.nbytes:
        return 0
    if _DATA_OFFSET:
        return _void_at(id(a) + _DATA_OFFSET).value or 0
    try:
        return _addressof(_c_byte_from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data


# ---- Reading ----


def hooks(slots: Sequence[Any], registry: Registry, unknown_error: bool, host: Any, torch: bool = False) -> Tuple[Callable[[Any, bool], Any], Dict[int, Callable[[Any, bool], Any]]]:
    """Returns cbor2's tag hook and semantic decoders for one skeleton:
    slot i is slots[i], typed objects go through registry, and lazy refs
    remember host (a weakref to a Host, or None). The tags around a
    scalar (slots, float scalars, 0-d arrays) go to the tag hook, which
    cbor2 calls faster; those around a list go to the semantic decoders,
    which receive it mutable (the tag hook would get tuples and
    frozendicts). With torch, inline arrays become torch tensors."""
    by_name = registry.by_name
    # The distinct batch descriptors lazy refs carried in full, in order:
    # a lazy ref of 5 items names one by its number (docs/wire-format.md §4.1).
    numbers: Dict[BatchDescriptor, int] = {}
    numbered: List[BatchDescriptor] = []
    scalars: Dict[int, Any] = {TAG_SLOT: slots.__getitem__, TAG_FLOAT16: _float16, TAG_FLOAT32: _float32}
    for code in _dtypes.NAMES:
        scalars[TAG_ARRAY0 + code] = _torch.array0(code) if torch else _array0(code)

    def tag_hook(tag: Any, immutable: bool) -> Any:
        f = scalars.get(tag.tag)
        if f is None:
            raise InvalidError(f"viacodec: the library wrote tag {tag.tag} in a skeleton, which this package does not know")
        return f(tag.value)

    def obj(v: Any, immutable: bool) -> Any:
        name, data = v
        entry = by_name(name)
        if entry is None:
            if unknown_error:
                raise UnregisteredError(f'viacodec: typed object "{name}" is not registered')
            return Object(name, data)
        try:
            return entry.from_data(data)
        except ViacodecError:
            raise
        except Exception as e:
            raise MismatchError(f"viacodec: recompose {name!r}: {e}") from e

    def lazyref(v: Any, immutable: bool) -> LazyRef:
        if len(v) == 5:
            n, item, dtype, shape, order = v
            if not 0 <= n < len(numbered):
                raise InvalidError(f"viacodec: the library wrote a lazy ref of batch {n} of {len(numbered)}")
            return LazyRef(numbered[n], item, dtype, tuple(shape), order, host)
        source, ref_id, token, items, nbytes, item, dtype, shape, order, *held = v
        b = BatchDescriptor(source, ref_id, token, items, nbytes, held[0] if held else "")
        n = numbers.get(b)
        if n is None:
            numbers[b] = len(numbered)
            numbered.append(b)
        else:
            b = numbered[n]
        return LazyRef(b, item, dtype, tuple(shape), order, host)

    inline = _torch.inline_array if torch else _inline_array
    return tag_hook, {TAG_PAIRS: _pairs, TAG_ARRAY: inline, TAG_OBJECT: obj, TAG_LAZYREF: lazyref}


def _float16(bits: int) -> np.float16:
    return np.uint16(bits).view(np.float16)


def _float32(bits: int) -> np.float32:
    return np.uint32(bits).view(np.float32)


def _array0(code: int) -> Callable[[bytes], np.ndarray]:
    """The hook of 0-d arrays of dtype code: a new array of the element."""
    dt = _dtypes.BY_CODE.get(code)
    if dt is None:

        def missing(b: bytes) -> np.ndarray:
            _dtypes.dtype_of(code)  # raises the reason (no ml_dtypes)
            raise AssertionError("unreachable")

        return missing
    new = np.ndarray
    return lambda b: new((), dt, b).copy()


def _pairs(flat: List[Any], immutable: bool) -> Any:
    """A map with a key that is not text: a dict when its keys are all
    ints and strings (distinct in Python as in CBOR), else a Map."""
    keys = flat[0::2]
    if all(type(k) is int or type(k) is str for k in keys):
        return dict(zip(keys, flat[1::2]))
    it = iter(flat)
    return Map(zip(it, it))


def _inline_array(v: List[Any], immutable: bool) -> np.ndarray:
    code, shape, order, data = v
    dt = _dtypes.BY_CODE.get(code)
    if dt is None:
        dt = _dtypes.dtype_of(code)  # raises the reason
    if order:
        return np.ndarray(shape, dt, data, order="F").copy("K")
    return np.ndarray(shape, dt, data).copy()


def read(data: Any, slots: Sequence[Any], registry: Registry, unknown_error: bool = False, host: Any = None, torch: bool = False) -> Any:
    """Decodes a skeleton (any buffer), slot i standing for slots[i]."""
    try:
        tag_hook, semantic = hooks(slots, registry, unknown_error, host, torch)
        # a skeleton nests at most twice as deep as the value's deepest
        # (a Map is a tag around a list)
        depth = 2 * _ffi.lib().limits().max_depth_limit + 2
        return cbor2.loads(data, tag_hook=tag_hook, semantic_decoders=semantic, max_depth=depth)
    except cbor2.CBORDecodeError as e:
        if isinstance(e.__cause__, ViacodecError):
            raise e.__cause__ from None
        raise  # a skeleton Go wrote that cbor2 cannot read: a bug, not the caller's


def write(value: Any, registry: Registry, max_depth: int, bytes_slot_min: int) -> Tuple[bytes, Writer]:
    """Returns the skeleton of value and the Writer holding its slots."""
    w = Writer(registry, max_depth, bytes_slot_min)
    return w.skeleton(value), w
