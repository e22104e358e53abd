"""viacodec: a message codec for federated learning, over the Go core.

A message is a value tree (dicts, lists, str, numbers, bytes) that may hold
large numpy arrays (or CPU torch tensors; ``tensors="torch"`` decodes to
them); viacodec encodes it as deterministic CBOR (docs/wire-format.md),
byte for byte what the Go core writes.

>>> import numpy as np, viacodec
>>> msg = viacodec.dumps({"round": 3, "model": {"w": np.ones((2, 2), np.float32)}})
>>> viacodec.loads(msg)["model"]["w"]
array([[1., 1.],
       [1., 1.]], dtype=float32)

Large arrays can travel by reference instead: a Host serves them from
this process and the receiver downloads them straight into its own numpy
arrays, while the message stays small. A relay decodes with
``pass_through=True`` (arrays become LazyRefs, nothing is downloaded) and
forwards; the final receiver still downloads from the source.

>>> with viacodec.Host(name="server") as server, viacodec.Host(name="agent") as agent:
...     msg, tx = server.dumps({"w": np.ones((1024, 1024), np.float32)}, receivers=1)
...     relayed = viacodec.dumps(viacodec.loads(msg, pass_through=True))  # a relay
...     w = agent.loads(relayed)["w"]                                      # downloads
...     outcome = tx.wait(timeout=30)
>>> w.shape, outcome.confirmed
((1024, 1024), ['agent'])

The codec runs in libviacodec.so (loaded with ctypes from inside the
package, or from $VIACODEC_LIBRARY): ``pip install ./bindings/python``
builds it with Go, ``make python`` builds it into a checkout. It is safe
to call from several threads at once; calls release the GIL. Calls that
can block (Transaction.wait, Host.loads, resolve, and Host.dumps when it
uploads: to a grant's holder or a store) answer Ctrl-C at once.

One Go runtime lives in each process that loaded the library: do not fork
a process that has used viacodec and keep using it in the child (every
call there raises ForkedProcessError). With multiprocessing, use the
"spawn" start method (``multiprocessing.get_context("spawn")``).
$VIACODEC_LOG=debug (or info, warn, error) logs the hosts' HTTP activity
to stderr.
"""

from __future__ import annotations

from ._codec import dumps, loads
from ._errors import (
    AbortedError,
    AuthError,
    ChecksumError,
    DecodeSyntaxError,
    ErrorKind,
    ExpiredError,
    ForkedProcessError,
    InvalidError,
    LimitError,
    MismatchError,
    ProtocolError,
    SourceUnavailableError,
    UnknownRefError,
    UnknownTagError,
    UnregisteredError,
    UnsupportedTypeError,
    ViacodecError,
    ViacodecTimeoutError,
)
from ._host import Host, HostStats, resolve
from ._relay import Relay, RelayStats
from ._tx import Outcome, ReceiverState, ReceiverStatus, Transaction, TxState
from ._refs import LazyRef
from ._types import Map, Object, Registry, default_registry, register

__version__ = "0.1.0"

__all__ = [
    "dumps",
    "loads",
    "Host",
    "Transaction",
    "Outcome",
    "ReceiverStatus",
    "TxState",
    "ReceiverState",
    "HostStats",
    "Relay",
    "RelayStats",
    "LazyRef",
    "resolve",
    "register",
    "Registry",
    "default_registry",
    "Object",
    "Map",
    "library_version",
    "library_path",
    "ViacodecError",
    "ErrorKind",
    "InvalidError",
    "UnsupportedTypeError",
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
    "ForkedProcessError",
]


def library_version() -> str:
    """The version of the loaded libviacodec.so (loading it if needed):
    the Go core's, which is the package's.

    >>> import viacodec
    >>> viacodec.library_version() == viacodec.__version__
    True
    """
    from . import _ffi

    return _ffi.lib().version()


def library_path() -> str:
    """The path libviacodec.so is (or will be) loaded from."""
    from . import _ffi

    return _ffi.library_path()
