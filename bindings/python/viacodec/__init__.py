"""viacodec: a message codec for federated learning, over the Go core.

A message is a value tree (dicts, lists, str, numbers, bytes) that may hold
large numpy arrays; viacodec encodes it as deterministic CBOR
(docs/wire-format.md), byte for byte what the Go core writes.

>>> import numpy as np, viacodec
>>> msg = viacodec.dumps({"round": 3, "model": {"w": np.ones((2, 2), np.float32)}})
>>> viacodec.loads(msg)["model"]["w"]
array([[1., 1.],
       [1., 1.]], dtype=float32)

The codec runs in libviacodec.so (loaded with ctypes from inside the
package, or from $VIACODEC_LIBRARY; build it with ``make python``). It is
safe to call from several threads at once; calls release the GIL.

One Go runtime lives in each process that loaded the library: do not fork
a process that has used viacodec and keep using it in the child. With
multiprocessing, use the "spawn" start method
(``multiprocessing.get_context("spawn")``).
"""

from __future__ import annotations

from ._codec import dumps, loads
from ._errors import (
    AbortedError,
    AuthError,
    ChecksumError,
    DecodeSyntaxError,
    ExpiredError,
    InvalidError,
    LimitError,
    MismatchError,
    ProtocolError,
    SourceUnavailableError,
    UnknownRefError,
    UnknownTagError,
    UnregisteredError,
    ViacodecError,
    ViacodecTimeoutError,
)
from ._types import Map, Object, Registry, default_registry, register

__version__ = "0.1.0"

__all__ = [
    "dumps",
    "loads",
    "register",
    "Registry",
    "default_registry",
    "Object",
    "Map",
    "library_version",
    "library_path",
    "ViacodecError",
    "InvalidError",
    "DecodeSyntaxError",
    "LimitError",
    "UnknownTagError",
    "MismatchError",
    "UnregisteredError",
    "ProtocolError",
    "UnknownRefError",
    "ExpiredError",
    "AuthError",
    "ViacodecTimeoutError",
    "AbortedError",
    "ChecksumError",
    "SourceUnavailableError",
]


def library_version() -> str:
    """The version of the loaded libviacodec.so (loading it if needed).

    >>> import viacodec
    >>> viacodec.library_version()
    '0.1.0'
    """
    from . import _ffi

    return _ffi.lib().version()


def library_path() -> str:
    """The path libviacodec.so is (or will be) loaded from."""
    from . import _ffi

    return _ffi.library_path()
