"""LazyRef: a referenced array that was not downloaded.

A message encoded by reference holds ref nodes instead of the arrays'
bytes, and a side table of batch descriptors (source, ref id, capability
token, item count, total bytes). Decoding with ``pass_through=True`` turns
each ref node into a LazyRef, which describes the array (dtype, shape,
source) without its bytes. Encoding a LazyRef again (``dumps``,
``Host.dumps``) writes the same ref node pointing at the same source, so the
next receiver downloads straight from there: the mode of a relay.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, List, NamedTuple, Optional, Tuple

import numpy as np

from . import _dtypes, _ffi
from ._errors import InvalidError


#: Downloads LazyRefs: (refs, host, timeout, tensors) -> arrays. Resolving decodes
#: a message of refs, which sits above this module (the skeleton reader
#: makes LazyRefs), so _host registers it when the package loads.
_resolver: Optional[Callable[[List["LazyRef"], Any, Optional[float], str], List[Any]]] = None


def set_resolver(f: Callable[[List["LazyRef"], Any, Optional[float], str], List[Any]]) -> None:
    """Sets what LazyRef.resolve downloads with."""
    global _resolver
    _resolver = f


class BatchDescriptor(NamedTuple):
    """A batch descriptor as a message carries it (the token is secret:
    whoever holds it may download the batch)."""

    source: str
    ref_id: bytes  # 16 bytes (a UUID)
    token: bytes  # 32 bytes
    items: int
    nbytes: int
    holder: str = ""  # base URL of a Host holding the bytes for source, if any


_CODE_OF_NAME = {name: code for code, name in _dtypes.NAMES.items()}


class LazyRef:
    """An array by reference that was not downloaded (pass-through).

    >>> import numpy as np, viacodec
    >>> with viacodec.Host(name="source") as source:
    ...     msg, tx = source.dumps({"w": np.ones((512, 1024), np.float32)}, receivers=1)
    ...     ref = viacodec.loads(msg, pass_through=True)["w"]
    ...     print(ref.dtype, ref.shape, ref.source == source.source)
    ...     w = ref.resolve(source)
    float32 (512, 1024) True
    >>> float(w.sum())
    524288.0

    Attributes: ``dtype`` (numpy dtype), ``shape``, ``order`` ("C" or
    "F"), ``nbytes``, ``source`` (base URL of the source's server),
    ``ref_id`` (the batch's UUID, a str) and ``item`` (its index in the
    batch). Encoding it writes the same reference again. LazyRefs compare
    equal when they name the same item of the same batch, and pickle (the
    capability token included: treat them as the message itself).
    """

    __slots__ = ("_batch", "_item", "_dtype", "_shape", "_order", "_host", "__weakref__")

    def __init__(self, batch: BatchDescriptor, item: int, dtype: str, shape: Tuple[int, ...], order: int, host: Any = None) -> None:
        if dtype not in _CODE_OF_NAME:
            raise InvalidError(f"viacodec: unknown dtype {dtype!r}")
        self._batch = batch
        self._item = item
        self._dtype = dtype
        self._shape = tuple(shape)
        self._order = order
        self._host = host  # weakref.ref to the Host that decoded it, or None

    @property
    def dtype(self) -> np.dtype:
        """The array's numpy dtype (MismatchError for bfloat16 and float8
        without ml_dtypes)."""
        return _dtypes.dtype_of(_CODE_OF_NAME[self._dtype])

    @property
    def dtype_name(self) -> str:
        """The dtype's name ("float32"), which needs no ml_dtypes."""
        return self._dtype

    @property
    def code(self) -> int:
        """The core.DType number of the dtype."""
        return _CODE_OF_NAME[self._dtype]

    @property
    def shape(self) -> Tuple[int, ...]:
        return self._shape

    @property
    def order(self) -> str:
        """ "C" (row-major) or "F" (column-major)."""
        return "F" if self._order == 1 else "C"

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def nbytes(self) -> int:
        n = _ffi.lib().vc_dtype_size(_CODE_OF_NAME[self._dtype])
        for d in self._shape:
            n *= d
        return n

    @property
    def source(self) -> str:
        """The base URL of the origin: the server the batch was published on."""
        return self._batch.source

    @property
    def holder(self) -> str:
        """The base URL of the Host that holds the bytes for the origin (a
        caching relay, or the Host a source uploaded to), or "" when the
        bytes are downloaded from source."""
        return self._batch.holder

    @property
    def ref_id(self) -> str:
        """The batch's ref id (a UUID)."""
        return str(uuid.UUID(bytes=self._batch.ref_id))

    @property
    def item(self) -> int:
        """The array's index in its batch."""
        return self._item

    def resolve(self, host: Any = None, *, timeout: Optional[float] = None, tensors: str = "numpy", offload: Any = None, offload_keep: bool = False) -> Any:
        """Downloads the array into a new numpy array (a torch tensor with
        ``tensors="torch"``) and returns it. With ``offload=DIR`` it lands
        in a safetensors file in DIR instead, and the result is a
        read-only numpy.memmap over it (see Host.loads).

        host is the Host whose client downloads (its receiver id is what
        the source records); by default the Host that decoded this
        LazyRef if it is still open, else the library's own client (a
        random receiver id, no TLS). A download confirms receipt of the
        whole batch to the source: to fetch several arrays of one batch,
        resolve them together with ``viacodec.resolve(value)`` or
        ``Host.resolve(value)``. timeout (seconds) bounds the download:
        ViacodecTimeoutError when it runs out.
        """
        if _resolver is None:  # pragma: no cover - the package registers it on import
            raise InvalidError("viacodec: no resolver registered (import viacodec)")
        return _resolver([self], host, timeout, tensors, offload, offload_keep)[0]

    def _key(self) -> tuple:
        return (self._batch, self._item, self._dtype, self._shape, self._order)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LazyRef):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        order = ", order='F'" if self._order == 1 else ""
        return f"<LazyRef {self._dtype}{list(self._shape)}{order} item {self._item} of batch {self.ref_id} at {self.source}>"

    def __reduce__(self) -> Any:
        return (_rebuild, (tuple(self._batch), self._item, self._dtype, self._shape, self._order))


def _rebuild(batch: tuple, item: int, dtype: str, shape: tuple, order: int) -> LazyRef:
    return LazyRef(BatchDescriptor(*batch), item, dtype, shape, order)
