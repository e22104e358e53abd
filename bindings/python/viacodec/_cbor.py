"""Pure-Python CBOR for the skeleton of a value.

The Python package hands values to the Go core as a *skeleton*: the value
encoded as a viacodec message (docs/wire-format.md) in which every numpy
array, and every long byte string, is replaced by the slot tag
``0x56430003(index)`` (wire-format §4.1, never valid in a message); the
slots themselves travel as C descriptors of the memory holding them (see
_codec.py).

The encoder writes exactly what the Go core writes for the same value
(deterministic: shortest heads, map keys sorted by their encoded bytes,
floats at their own width): ``float`` as float64, ``numpy.float32`` as
float32, ``numpy.float16`` as float16; ints of any size (bignums beyond
64 bits); ``tuple`` as a list. The decoder maps float16 and float32 back to
numpy scalars of that width, so every value round-trips bit for bit.

A LazyRef is written as what it is on the wire: a ref node
``0x56430002([batch, item, dtype, shape, order])`` and its batch
descriptor in the envelope's side table; the decoder turns ref nodes back
into LazyRefs. The Go side re-emits them as they came (pass-through).
"""

from __future__ import annotations

import struct
from operator import itemgetter
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import _dtypes
from ._errors import (
    DecodeSyntaxError,
    InvalidError,
    LimitError,
    MismatchError,
    ProtocolError,
    UnknownTagError,
    UnregisteredError,
    ViacodecError,
)
from ._refs import BatchDescriptor, LazyRef
from ._types import Map, Object, Registry

TAG_ENVELOPE = 0x56430000
TAG_OBJECT = 0x56430001
TAG_REF = 0x56430002
TAG_SLOT = 0x56430003
FORMAT_VERSION = 1

_ENVELOPE_HEAD = b"\xda\x56\x43\x00\x00\x83\x01"  # tag(envelope) [3] 1
_OBJECT_HEAD = b"\xda\x56\x43\x00\x01\x82"  # tag(object) [2]
_SLOT_HEAD = b"\xda\x56\x43\x00\x03"  # tag(slot), then the index (skeletons only)
_REF_HEAD = b"\xda\x56\x43\x00\x02\x85"  # tag(ref) [5]

_U64 = 1 << 64
_pack_B = struct.Struct(">B").pack
_pack_BB = struct.Struct(">BB").pack
_pack_BH = struct.Struct(">BH").pack
_pack_BI = struct.Struct(">BI").pack
_pack_BQ = struct.Struct(">BQ").pack
_pack_Bd = struct.Struct(">Bd").pack
_unpack_H = struct.Struct(">H").unpack_from
_unpack_I = struct.Struct(">I").unpack_from
_unpack_Q = struct.Struct(">Q").unpack_from
_unpack_d = struct.Struct(">d").unpack_from


def head(major: int, arg: int) -> bytes:
    """The head of an item of major type major with argument arg, shortest form."""
    mt = major << 5
    if arg < 24:
        return _pack_B(mt | arg)
    if arg < 0x100:
        return _pack_BB(mt | 24, arg)
    if arg < 0x10000:
        return _pack_BH(mt | 25, arg)
    if arg < 0x100000000:
        return _pack_BI(mt | 26, arg)
    return _pack_BQ(mt | 27, arg)


def _utf8(s: str) -> bytes:
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidError(f"viacodec: string {s!r} is not valid UTF-8 (it holds a lone surrogate)") from None


def _text(s: str) -> bytes:
    b = _utf8(s)
    return head(3, len(b)) + b


def _bignum(tag: int, n: int) -> bytes:
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return head(6, tag) + head(2, len(b)) + b


def _int_bytes(n: int) -> bytes:
    if n >= 0:
        return head(0, n) if n < _U64 else _bignum(2, n)
    m = -1 - n
    return head(1, m) if m < _U64 else _bignum(3, m)


def key_bytes(k: Any) -> bytes:
    """The encoding of map key k: an int, str, bytes-like, bool or None."""
    t = type(k)
    if t is str:
        return _text(k)
    if k is None:
        return b"\xf6"
    if t is bool or isinstance(k, np.bool_):
        return b"\xf5" if k else b"\xf4"
    if isinstance(k, (int, np.integer)):
        return _int_bytes(int(k))
    if isinstance(k, str):
        return _text(str(k))
    if isinstance(k, (bytes, bytearray, memoryview)):
        b = bytes(k)
        return head(2, len(b)) + b
    raise InvalidError(f"viacodec: map key of type {t.__qualname__} is not an integer, string, byte string, bool or None")


class Slot:
    """One array or byte string passed out of line.

    obj is what the caller gave (kept alive so that ids are not reused
    while encoding); buf is the contiguous little-endian buffer to send.
    """

    __slots__ = ("obj", "buf", "address", "nbytes", "dtype", "order", "shape")

    def __init__(self, obj: Any, buf: Any, address: int, nbytes: int, dtype: int, order: int, shape: Tuple[int, ...]) -> None:
        self.obj = obj
        self.buf = buf
        self.address = address
        self.nbytes = nbytes
        self.dtype = dtype
        self.order = order
        self.shape = shape


class Encoder:
    """Encodes one value into a skeleton message; collects its slots.

    max_depth bounds nesting as the core counts it (a list or map one
    level, a typed object two, an array three); bytes_slot_min > 0 sends
    byte strings at least that long out of line.
    """

    def __init__(self, registry: Registry, max_depth: int = 128, bytes_slot_min: int = 0) -> None:
        self.registry = registry
        self.max_depth = max_depth
        self.bytes_slot_min = bytes_slot_min
        self.out = bytearray()
        self.slots: List[Slot] = []
        self._slot_of: dict = {}  # id(obj) -> slot index
        self.batches: List[BatchDescriptor] = []  # of the LazyRefs, in order of first use
        self._batch_of: dict = {}  # ref id -> index in batches

    def message(self, value: Any) -> bytearray:
        """Returns the skeleton message of value."""
        out = self.out
        out += _ENVELOPE_HEAD
        try:
            self._enc(value, 0)
        except RecursionError:
            raise LimitError(f"viacodec: value nests too deeply for Python (MaxDepth {self.max_depth})") from None
        out += head(4, len(self.batches))
        for b in self.batches:
            out.append(0x85)
            out += _text(b.source)
            out += head(2, len(b.ref_id))
            out += b.ref_id
            out += head(2, len(b.token))
            out += b.token
            out += head(0, b.items)
            out += head(0, b.nbytes)
        return out

    def _ref(self, r: LazyRef, depth: int) -> None:
        # tag, [..., shape, ...]: three levels, as the core counts them.
        self._nest(depth, 3)
        b = r._batch
        if not isinstance(b, BatchDescriptor):
            raise InvalidError("viacodec: a LazyRef without a batch descriptor")
        i = self._batch_of.get(b.ref_id)
        if i is None:
            i = len(self.batches)
            self.batches.append(b)
            self._batch_of[b.ref_id] = i
        elif self.batches[i] != b:
            raise InvalidError(f"viacodec: two different batch descriptors share ref id {r.ref_id}")
        out = self.out
        out += _REF_HEAD
        out += head(0, i)
        out += head(0, r._item)
        out += _text(r._dtype)
        out += head(4, len(r._shape))
        for d in r._shape:
            out += head(0, d)
        out += head(0, r._order)

    def _nest(self, depth: int, levels: int) -> None:
        if depth + levels > self.max_depth:
            raise LimitError(f"viacodec: value nests deeper than MaxDepth {self.max_depth} (a cycle?)")

    def _enc(self, v: Any, depth: int) -> None:
        t = type(v)
        out = self.out
        if t is str:
            b = _utf8(v)
            out += head(3, len(b))
            out += b
        elif t is int:
            if -_U64 <= v < _U64:
                out += _int_bytes(v)
            else:
                self._nest(depth, 1)
                out += _int_bytes(v)
        elif t is float:
            out += _pack_Bd(0xFB, v)
        elif v is None:
            out.append(0xF6)
        elif t is bool:
            out.append(0xF5 if v else 0xF4)
        elif t is dict:
            self._dict(v, depth)
        elif t is list or t is tuple:
            self._list(v, depth)
        elif t is bytes:
            self._bytes(v, len(v))
        elif t is np.ndarray:
            self._array(v, depth)
        elif t is LazyRef:
            self._ref(v, depth)
        else:
            self._other(v, t, depth)

    def _other(self, v: Any, t: type, depth: int) -> None:
        entry = self.registry.by_type(t)
        if entry is not None:
            try:
                data = entry.to_data(v)
            except ViacodecError:
                raise
            except Exception as e:
                raise InvalidError(f"viacodec: decompose {entry.name!r}: {e}") from e
            self._object(entry.name, data, depth)
        elif isinstance(v, Object):
            self._object(v.name, v.data, depth)
        elif isinstance(v, LazyRef):
            self._ref(v, depth)
        elif isinstance(v, Map):
            self._pairs(v, depth)
        elif isinstance(v, np.ndarray):
            if isinstance(v, np.ma.MaskedArray):
                raise InvalidError("viacodec: cannot encode a masked array (send .data and .mask)")
            self._array(v, depth)
        elif isinstance(v, np.generic):
            self._scalar(v, depth)
        elif isinstance(v, int):  # bool subclasses cannot exist; IntEnum and such
            self._enc(int(v), depth)
        elif isinstance(v, float):
            self.out += _pack_Bd(0xFB, float(v))
        elif isinstance(v, str):
            self._enc(str(v), depth)
        elif isinstance(v, (bytes, bytearray)):
            self._bytes(v, len(v))
        elif isinstance(v, memoryview):
            if not v.c_contiguous:
                v = memoryview(v.tobytes())
            self._bytes(v, v.nbytes)
        elif isinstance(v, (list, tuple)):
            self._list(v, depth)
        elif isinstance(v, dict):
            self._dict(v, depth)
        elif isinstance(v, complex):
            self._array(np.array(v, dtype=np.complex128), depth)
        else:
            raise InvalidError(
                f"viacodec: cannot encode {t.__module__}.{t.__qualname__}: not in the value model and not registered"
            )

    def _scalar(self, v: np.generic, depth: int) -> None:
        out = self.out
        if isinstance(v, np.bool_):
            out.append(0xF5 if v else 0xF4)
        elif isinstance(v, np.integer):
            self._enc(int(v), depth)
        elif isinstance(v, np.float16):
            out += _pack_BH(0xF9, int(v.view(np.uint16)))
        elif isinstance(v, np.float32):
            out += _pack_BI(0xFA, int(v.view(np.uint32)))
        elif isinstance(v, np.float64):
            out += _pack_BQ(0xFB, int(v.view(np.uint64)))
        elif isinstance(v, np.str_):
            self._enc(str(v), depth)
        elif isinstance(v, np.bytes_):
            self._bytes(bytes(v), len(v))
        elif _dtypes.code_of(v.dtype) is not None:
            # complex64/128, bfloat16, float8: no CBOR scalar; a 0-d array.
            self._array(np.asarray(v), depth)
        else:
            raise InvalidError(f"viacodec: cannot encode a numpy {v.dtype} scalar")

    def _list(self, v: Sequence[Any], depth: int) -> None:
        self._nest(depth, 1)
        self.out += head(4, len(v))
        for x in v:
            self._enc(x, depth + 1)

    def _dict(self, v: dict, depth: int) -> None:
        for k in v:
            if type(k) is not str:
                self._pairs(v.items(), depth)
                return
        self._nest(depth, 1)
        items = sorted(((_text(k), x) for k, x in v.items()), key=itemgetter(0))
        out = self.out
        out += head(5, len(items))
        for kb, x in items:
            out += kb
            self._enc(x, depth + 1)

    def _pairs(self, pairs: Any, depth: int) -> None:
        self._nest(depth, 1)
        items = sorted(((key_bytes(k), x) for k, x in pairs), key=itemgetter(0))
        for i in range(1, len(items)):
            if items[i - 1][0] == items[i][0]:
                raise InvalidError(f"viacodec: duplicate map key {items[i][0].hex()}")
        out = self.out
        out += head(5, len(items))
        for kb, x in items:
            out += kb
            self._enc(x, depth + 1)

    def _object(self, name: Any, data: Any, depth: int) -> None:
        self._nest(depth, 2)
        if not isinstance(name, str) or not name:
            raise InvalidError(f"viacodec: type name {name!r} is not a non-empty string")
        self.out += _OBJECT_HEAD
        self.out += _text(name)
        self._enc(data, depth + 2)

    def _bytes(self, v: Any, n: int) -> None:
        if self.bytes_slot_min and n >= self.bytes_slot_min:
            i = self._slot_of.get(id(v))
            if i is None:
                buf = np.frombuffer(v, dtype=np.uint8)
                i = self._add(Slot(v, buf, buf.ctypes.data, n, _dtypes.BYTES, 0, ()))
            self.out += _SLOT_HEAD
            self.out += head(0, i)
            return
        self.out += head(2, n)
        self.out += v

    def _array(self, a: np.ndarray, depth: int) -> None:
        # tag 40, its list, and shape and typed array: three levels.
        self._nest(depth, 3)
        i = self._slot_of.get(id(a))
        if i is None:
            code = _dtypes.CODES.get(a.dtype)
            buf = a
            if code is None:
                code = _dtypes.code_of(a.dtype)
                if code is None:
                    raise InvalidError(f"viacodec: cannot encode a numpy array of dtype {a.dtype}")
                buf = a.astype(a.dtype.newbyteorder("<"))  # big-endian: swap into a copy
            if buf.flags.c_contiguous:
                order = 0
            elif buf.flags.f_contiguous:
                order = 1  # column-major, sent as it is
            else:
                buf = np.ascontiguousarray(buf)
                order = 0
            i = self._add(Slot(a, buf, buf.ctypes.data, buf.nbytes, code, order, buf.shape))
        self.out += _SLOT_HEAD
        self.out += head(0, i)

    def _add(self, slot: Slot) -> int:
        self.slots.append(slot)
        i = len(self.slots) - 1
        self._slot_of[id(slot.obj)] = i
        return i


class Decoder:
    """Decodes a skeleton message, putting slots[i] in place of slot i.

    registry resolves typed objects; with unknown_error an unregistered
    name raises UnregisteredError instead of giving an Object.
    """

    def __init__(self, data: Any, slots: Optional[Sequence[Any]], registry: Registry, unknown_error: bool = False, host: Any = None) -> None:
        self.data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.off = 0
        self.slots = slots
        self.registry = registry
        self.unknown_error = unknown_error
        self.host = host  # given to the LazyRefs (a weakref to a Host, or None)
        self._refs: dict = {}  # (batch index, item) -> (LazyRef, offset); batch set after the body

    def message(self) -> Any:
        """Decodes the whole message and returns its body."""
        try:
            return self._message()
        except RecursionError:
            raise LimitError("viacodec: message nests too deeply for the Python decoder") from None

    def _message(self) -> Any:
        off = self.off
        major, arg = self._head()
        if major != 6 or arg != TAG_ENVELOPE:
            raise ProtocolError(f"viacodec: not a viacodec message (no envelope tag) at offset {off}", off)
        self._expect_list(3)
        off = self.off
        major, version = self._head()
        if major != 0 or version != FORMAT_VERSION:
            raise ProtocolError(f"viacodec: unsupported format version at offset {off}", off)
        body = self._item()
        off = self.off
        major, n = self._head()
        if major != 4:
            raise ProtocolError(f"viacodec: batches is not a list at offset {off}", off)
        if n > len(self.data) - self.off:
            raise self._syntax(f"{n} batch descriptors declared but only {len(self.data) - self.off} bytes remain", off)
        batches = []
        seen = set()
        for _ in range(n):
            boff = self.off
            b = self._batch_descriptor()
            if b.ref_id in seen:
                raise ProtocolError(f"viacodec: two batch descriptors with one ref id at offset {boff}", boff)
            seen.add(b.ref_id)
            batches.append(b)
        for (bi, item), (ref, roff) in self._refs.items():
            if bi >= len(batches):
                raise ProtocolError(f"viacodec: ref node names batch {bi} of {len(batches)} at offset {roff}", roff)
            if item >= batches[bi].items:
                raise ProtocolError(f"viacodec: ref node names item {item} of a batch of {batches[bi].items} at offset {roff}", roff)
            ref._batch = batches[bi]
        if self.off != len(self.data):
            raise DecodeSyntaxError(f"viacodec: {len(self.data) - self.off} bytes of trailing data at offset {self.off}", self.off)
        return body

    def _syntax(self, what: str, off: int) -> DecodeSyntaxError:
        return DecodeSyntaxError(f"viacodec: {what} at offset {off}", off)

    def _head(self) -> Tuple[int, int]:
        data, off = self.data, self.off
        if off >= len(data):
            raise self._syntax("unexpected end of data", off)
        ib = data[off]
        major, ai = ib >> 5, ib & 0x1F
        if ai < 24:
            self.off = off + 1
            if major == 7:
                return 7, (ai << 64) | ai
            return major, ai
        if ai == 24:
            n = 1
        elif ai == 25:
            n = 2
        elif ai == 26:
            n = 4
        elif ai == 27:
            n = 8
        elif ai == 31:
            raise self._syntax("indefinite-length items are not allowed", off)
        else:
            raise self._syntax("reserved additional information value", off)
        if len(data) - off - 1 < n:
            raise self._syntax("unexpected end of data", off)
        if n == 1:
            arg = data[off + 1]
        elif n == 2:
            arg = _unpack_H(data, off + 1)[0]
        elif n == 4:
            arg = _unpack_I(data, off + 1)[0]
        else:
            arg = _unpack_Q(data, off + 1)[0]
        self.off = off + 1 + n
        if major == 7:
            return 7, (ai << 64) | arg  # keep the width of floats
        return major, arg

    def _read(self, n: int, off: int) -> Any:
        if n > len(self.data) - self.off:
            raise self._syntax("unexpected end of data", off)
        b = self.data[self.off : self.off + n]
        self.off += n
        return b

    def _expect_list(self, n: int) -> None:
        off = self.off
        major, arg = self._head()
        if major != 4 or arg != n:
            raise ProtocolError(f"viacodec: expected a list of {n} items at offset {off}", off)

    def _item(self) -> Any:
        off = self.off
        major, arg = self._head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2:
            return bytes(self._read(arg, off))
        if major == 3:
            try:
                return str(self._read(arg, off), "utf-8")
            except UnicodeDecodeError:
                raise self._syntax("text string is not valid UTF-8", off) from None
        if major == 4:
            if arg > len(self.data) - self.off:
                raise self._syntax(f"{arg} items declared but only {len(self.data) - self.off} bytes remain", off)
            return [self._item() for _ in range(arg)]
        if major == 5:
            return self._map(arg, off)
        if major == 6:
            return self._tagged(arg, off)
        return self._simple(arg, off)

    def _simple(self, arg: int, off: int) -> Any:
        ai, bits = arg >> 64, arg & (_U64 - 1)
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        if ai == 25:
            return np.uint16(bits).view(np.float16)
        if ai == 26:
            return np.uint32(bits).view(np.float32)
        if ai == 27:
            return _unpack_d(_pack_BQ(0, bits), 1)[0]
        if ai == 24 and bits < 32:
            raise self._syntax(f"simple value {bits} in two-byte form", off)
        raise ProtocolError(f"viacodec: simple value {bits if ai == 24 else ai} is not in the value model at offset {off}", off)

    def _map(self, n: int, off: int) -> Any:
        if 2 * n > len(self.data) - self.off:
            raise self._syntax(f"map of {n} pairs but only {len(self.data) - self.off} bytes remain", off)
        pairs = []
        text_keys = True
        for _ in range(n):
            koff = self.off
            k = self._item()
            if type(k) is not str:
                text_keys = False
                if not (k is None or type(k) in (int, bool, bytes)):
                    raise ProtocolError(f"viacodec: map key of type {type(k).__qualname__} at offset {koff}", koff)
            pairs.append((k, self._item(), koff))
        if not text_keys:
            return Map((k, v) for k, v, _ in pairs)
        d = {}
        for k, v, koff in pairs:
            if k in d:
                raise self._syntax(f"duplicate map key {k!r}", koff)
            d[k] = v
        return d

    def _tagged(self, tag: int, off: int) -> Any:
        if tag == 2 or tag == 3:
            boff = self.off
            major, n = self._head()
            if major != 2:
                raise ProtocolError(f"viacodec: bignum content is not a byte string at offset {boff}", boff)
            v = int.from_bytes(self._read(n, boff), "big")
            return v if tag == 2 else -1 - v
        if tag == TAG_SLOT:
            return self._slot(off)
        if tag == TAG_OBJECT:
            return self._object(off)
        if tag == TAG_REF:
            return self._ref_node(off)
        if tag == TAG_ENVELOPE:
            raise ProtocolError(f"viacodec: envelope nested inside a message at offset {off}", off)
        raise UnknownTagError(f"viacodec: unknown tag {tag} at offset {off}", off)

    def _object(self, off: int) -> Any:
        self._expect_list(2)
        noff = self.off
        name = self._item()
        if type(name) is not str:
            raise ProtocolError(f"viacodec: typed object name is not a text string at offset {noff}", noff)
        data = self._item()
        entry = self.registry.by_name(name)
        if entry is None:
            if self.unknown_error:
                raise UnregisteredError(f'viacodec: typed object "{name}" is not registered')
            return Object(name, data)
        try:
            return entry.from_data(data)
        except ViacodecError:
            raise
        except Exception as e:
            raise MismatchError(f"viacodec: recompose {name!r}: {e}") from e

    def _uint(self) -> int:
        off = self.off
        major, arg = self._head()
        if major != 0:
            raise ProtocolError(f"viacodec: expected an unsigned integer at offset {off}", off)
        return arg

    def _bytes_n(self, n: int) -> bytes:
        off = self.off
        major, arg = self._head()
        if major != 2 or arg != n:
            raise ProtocolError(f"viacodec: expected a byte string of {n} bytes at offset {off}", off)
        return bytes(self._read(n, off))

    def _batch_descriptor(self) -> BatchDescriptor:
        self._expect_list(5)
        off = self.off
        source = self._item()
        if type(source) is not str:
            raise ProtocolError(f"viacodec: batch source is not a text string at offset {off}", off)
        ref_id = self._bytes_n(16)
        token = self._bytes_n(32)
        return BatchDescriptor(source, ref_id, token, self._uint(), self._uint())

    def _ref_node(self, off: int) -> LazyRef:
        self._expect_list(5)
        bi = self._uint()
        item = self._uint()
        doff = self.off
        dtype = self._item()
        if type(dtype) is not str or dtype not in _REF_DTYPES:
            raise MismatchError(f"viacodec: unknown dtype {dtype!r} at offset {doff}", doff)
        soff = self.off
        major, n = self._head()
        if major != 4 or n > len(self.data) - self.off:
            raise ProtocolError(f"viacodec: ref node shape is not a list at offset {soff}", soff)
        shape = tuple(self._uint() for _ in range(n))
        order = self._uint()
        if order > 1:
            raise ProtocolError(f"viacodec: order {order} is neither 0 nor 1 at offset {off}", off)
        known = self._refs.get((bi, item))
        if known is not None:  # the same item again: one value
            ref = known[0]
            if (ref._dtype, ref._shape, ref._order) != (dtype, shape, order):
                raise ProtocolError(f"viacodec: two ref nodes describe item {item} of batch {bi} differently at offset {off}", off)
            return ref
        ref = LazyRef(None, item, dtype, shape, order, self.host)  # type: ignore[arg-type]  # batch set after the body
        self._refs[(bi, item)] = (ref, off)
        return ref

    def _slot(self, off: int) -> Any:
        ioff = self.off
        i = self._item()
        if self.slots is None or type(i) is not int or not 0 <= i < len(self.slots):
            raise ProtocolError(f"viacodec: slot object with bad index {i!r} at offset {ioff}", ioff)
        return self.slots[i]


def encode_skeleton(value: Any, registry: Registry, max_depth: int = 128, bytes_slot_min: int = 0) -> Tuple[bytearray, List[Slot]]:
    """Returns the skeleton message of value and its slots."""
    enc = Encoder(registry, max_depth, bytes_slot_min)
    return enc.message(value), enc.slots


def decode_skeleton(data: Any, slots: Optional[Sequence[Any]], registry: Registry, unknown_error: bool = False, host: Any = None) -> Any:
    """Decodes a skeleton message, slot i standing for slots[i]; ref nodes
    become LazyRefs that remember host (a weakref to a Host, or None)."""
    return Decoder(data, slots, registry, unknown_error, host).message()


_REF_DTYPES = frozenset(_dtypes.NAMES.values())
