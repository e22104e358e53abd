"""Host, Transaction and downloads: the by-reference half of viacodec.

A Host runs, inside this process and on the Go side of the library, a
table of published batches, an HTTP server (hostdl) that serves them and a
client that downloads. ``Host.dumps`` encodes arrays of ``ref_threshold``
bytes or more as references and publishes them: the message is small, and
each receiver downloads the arrays straight from this process. The arrays
are served from their own memory: the Transaction ``dumps`` returns keeps
them alive until it has ended, and they must not change until then (or
pass ``snapshot=True``). ``Host.loads`` downloads the referenced arrays
straight into numpy arrays it allocates (vc_host_decode, then
vc_decode_fetch): no other copy of their bytes is ever made.

Every call that can block answers Ctrl-C within a fraction of a second:
waits run in short slices, and a download runs in a worker thread while
the main thread waits; an interrupt cancels it (vc_decode_cancel), joins
the worker and goes on as KeyboardInterrupt, leaving no partial value and
the Host usable.
"""

from __future__ import annotations

import atexit
import ctypes
import enum
import math
import threading
import time
import weakref
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import _codec, _ffi, _prefault, _skeleton, _torch
from ._codec import BYTES_SLOT_MIN, alloc_slots, check_max_depth, copy_message, dec_options, decode_skeleton, slot_table
from ._errors import InvalidError, ViacodecError, ViacodecTimeoutError
from ._refs import LazyRef
from ._types import Map, Object, Registry, default_registry


class TxState(str, enum.Enum):
    """Where a transaction is (core.State); every state but OPEN is final.
    Members compare equal to their names: ``TxState.COMPLETED == "completed"``."""

    OPEN = "open"
    COMPLETED = "completed"  # every expected receiver confirmed
    QUORUM_MET = "quorum met"  # timed out with the quorum confirmed
    TIMED_OUT = "timed out"  # no activity for the timeout, quorum not met
    ABORTED = "aborted"  # ended by Transaction.abort
    DELETED = "deleted"  # ended by Host.close

    def __str__(self) -> str:
        return self.value


class ReceiverState(str, enum.Enum):
    """Where one receiver of a transaction is (core.ReceiverState)."""

    STARTED = "started"  # asked for the manifest or a range
    CONFIRMED = "confirmed"  # sent a valid receipt
    FAILED = "failed"  # the transaction ended before its receipt

    def __str__(self) -> str:
        return self.value


#: core's numbers of the states, never renumbered (checked by the tests
#: against vc_tx_state_name and vc_receiver_state_name)
TX_STATES = list(TxState)
RECEIVER_STATES = list(ReceiverState)


class ReceiverStatus(NamedTuple):
    """One receiver as the source saw it."""

    id: str
    state: ReceiverState
    bytes: int  # item bytes served to it
    first_seen: float  # Unix time, seconds
    last_seen: float


class Outcome(NamedTuple):
    """A transaction's state and receivers (in the order they appeared)."""

    state: TxState
    receivers: List[ReceiverStatus]
    ref_id: str

    @property
    def confirmed(self) -> List[str]:
        """The ids of the receivers that confirmed."""
        return [r.id for r in self.receivers if r.state == ReceiverState.CONFIRMED]


class HostStats(NamedTuple):
    """A Host's counters."""

    bytes_served: int  # item bytes its server wrote to receivers
    requests: int  # requests its server answered
    open_transactions: int
    receivers_active: int  # started and not confirmed, over the open transactions
    conns_open: int


#: The longest a blocking call keeps the main thread from seeing Ctrl-C.
_SLICE = 0.05


def _timeout_ns(timeout: Optional[float], what: str = "timeout") -> int:
    """seconds -> nanoseconds; None -> -1 (no limit)."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0 or math.isinf(timeout):
        raise InvalidError(f"viacodec: {what} {timeout!r} is not a number of seconds >= 0 (or None)")
    return int(timeout * 1e9)


def _threshold(v: Any) -> int:
    """ref_threshold as the library takes it: 0 for the default (None);
    0 and 1 both send every array with a byte by reference (an empty
    array has nothing to download and stays inline)."""
    if v is None:
        return 0
    if type(v) is not int or v < 0:
        raise InvalidError(f"viacodec: ref_threshold {v!r} is not an int >= 0")
    return max(v, 1)


_INT64_MAX = (1 << 63) - 1


def _int64(v: Any, what: str) -> int:
    """v as a C int64_t (which would wrap a larger int around); the
    library checks its range."""
    if type(v) is not int:
        raise InvalidError(f"viacodec: {what} {v!r} is not an int")
    if not -_INT64_MAX - 1 <= v <= _INT64_MAX:
        raise InvalidError(f"viacodec: {what} {v} is out of range")
    return v


def _names(names: Any) -> Tuple[Any, int]:
    """names as a C array of NUL-terminated strings and its length: (None,
    0) for None. The library checks the ids; the array lives as long as
    the first item returned."""
    if names is None:
        return None, 0
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise InvalidError(f"viacodec: names {names!r} is not a sequence of strings")
    encoded = []
    for i, n in enumerate(names):
        if not isinstance(n, str) or "\0" in n:
            raise InvalidError(f"viacodec: names[{i}] {n!r} is not a string without NUL characters")
        encoded.append(n.encode("utf-8", "surrogatepass"))
    return (ctypes.c_char_p * len(encoded))(*encoded), len(encoded)


def _outcome(raw: Tuple[int, bool, str, list]) -> Tuple[Outcome, bool]:
    state, ended, ref_id, rs = raw
    receivers = [ReceiverStatus(i, RECEIVER_STATES[s], b, f / 1e9, last / 1e9) for i, s, b, f, last in rs]
    return Outcome(TX_STATES[state], receivers, ref_id), ended


class Transaction:
    """A batch published by Host.dumps, and its receivers.

    It keeps the arrays that went by reference alive while receivers may
    download them; they must not change until the transaction has ended
    (wait() returned), unless dumps had ``snapshot=True``. The Host keeps
    each open Transaction too, so dropping it does not end the
    transaction: it ends when the expected receivers have confirmed, after
    ``timeout`` seconds without activity, by abort(), or by Host.close().

    >>> import numpy as np, viacodec
    >>> with viacodec.Host(name="source") as source, viacodec.Host(name="agent") as agent:
    ...     msg, tx = source.dumps({"w": np.zeros(1 << 18, np.float32)}, receivers=1)
    ...     w = agent.loads(msg)["w"]
    ...     out = tx.wait(timeout=10)
    >>> out.state, out.confirmed
    (<TxState.COMPLETED: 'completed'>, ['agent'])
    """

    def __init__(self, host: "Host", handle: int, keep: Any, receivers: int) -> None:
        self._host = weakref.ref(host)
        self._handle = handle
        self._keep = keep  # what the batch views: released after the handle
        self._lock = threading.Lock()
        self._final: Optional[Outcome] = None
        self.expected_receivers = receivers
        self.ref_id = self.status().ref_id

    def wait(self, timeout: Optional[float] = None) -> Outcome:
        """Waits until the transaction has ended and returns its Outcome.

        Raises ViacodecTimeoutError when timeout (seconds) runs out first;
        the transaction stays open, as it does when Ctrl-C interrupts the
        wait (which it does at once: the wait runs in short slices).
        Threads may wait at once.
        """
        _timeout_ns(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        lib = _ffi.lib()
        while True:
            # In slices, so that the main thread sees Ctrl-C between them.
            left = _SLICE if deadline is None else min(_SLICE, max(0.0, deadline - time.monotonic()))
            try:
                got = self._query(lib.vc_tx_wait, int(left * 1e9))
                break
            except ViacodecTimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise ViacodecTimeoutError(f"viacodec: the transaction did not end within {timeout} s") from None
        if got is None:
            return self._final  # type: ignore[return-value]
        self._finish(got[0])
        return got[0]

    def status(self) -> Outcome:
        """The transaction as it is now (state OPEN while it is open)."""
        lib = _ffi.lib()
        got = self._query(lib.vc_tx_status)
        if got is None:
            return self._final  # type: ignore[return-value]
        out, ended = got
        if ended:
            self._finish(out)
        return out

    def _query(self, func: Any, *args: Any) -> Optional[Tuple[Outcome, bool]]:
        """Calls vc_tx_wait or vc_tx_status; None once finished (then
        self._final is the outcome)."""
        handle = self._handle
        if handle:
            try:
                return _outcome(_ffi.lib().tx_outcome(func, handle, *args))
            except ViacodecError:
                if self._final is None and self._handle == handle:
                    raise
        with self._lock:  # held by _finish until it has set _final
            if self._final is None:  # pragma: no cover - cannot happen
                raise InvalidError("viacodec: the transaction is released")
        return None

    @property
    def done(self) -> bool:
        """Whether the transaction has ended."""
        return self.status().state != TxState.OPEN

    def abort(self) -> Outcome:
        """Ends the transaction (state ABORTED) if it is still open, waits
        for the downloads in progress to stop, and returns the Outcome."""
        handle = self._handle
        if handle:
            try:
                _ffi.lib().vc_tx_abort(handle, ctypes.byref(_ffi.VcError()))
            except ViacodecError:
                if self._final is None and self._handle == handle:
                    raise
        return self.wait()

    def _finish(self, out: Outcome) -> None:
        """Records the final outcome, releases the handle (which returns
        once nothing reads the arrays) and then the arrays."""
        with self._lock:
            if self._final is not None:
                return
            handle, self._handle = self._handle, 0
            if not _ffi.forked():
                _ffi.lib().release(handle)
            self._final = out
            self._keep = None
        host = self._host()
        if host is not None:
            host._forget(handle)

    def _end_with_host(self) -> None:
        """After the host closed (its transactions ended): the outcome."""
        if self._final is not None:
            return
        try:
            self.wait()
        except ViacodecError:  # pragma: no cover - released meanwhile
            pass

    def __repr__(self) -> str:
        out = self._final
        state = out.state.value if out is not None else "open?"
        return f"<Transaction {self.ref_id} {state}>"

    def __del__(self) -> None:
        if getattr(self, "_handle", 0) and self._final is None and not _ffi.forked():
            try:
                _ffi.lib().release(self._handle)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass


_live_hosts: "weakref.WeakSet[Host]" = weakref.WeakSet()

#: Host.dumps looks for ended transactions once this many are tracked
_PRUNE_MIN = 64


@atexit.register
def _close_hosts() -> None:
    # Before the interpreter frees the arrays the servers view.
    if _ffi.forked():
        return
    for h in list(_live_hosts):
        try:
            h.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


def host_options(
    listen: Optional[str] = None,
    name: Optional[str] = None,
    *,
    advertise: Optional[str] = None,
    default_name: Optional[str] = None,
    tls_cert: Optional[str] = None,
    tls_key: Optional[str] = None,
    tls_ca: Optional[str] = None,
    tls_client_auth: bool = False,
    ref_threshold: Optional[int] = None,
    concurrency: Optional[int] = None,
    chunk_size: Optional[int] = None,
    http2: bool = False,
    allow_cleartext: bool = False,
) -> _ffi.VcHostOptions:
    """Host's options as the library takes them (vc_host_options); the
    library checks them (vc_host_new, vc_host_check)."""

    def text(v: Any, what: str) -> Optional[bytes]:
        if v is None:
            return None
        if not isinstance(v, str) or "\0" in v or not v:
            raise InvalidError(f"viacodec: {what} {v!r} is not a non-empty string")
        return v.encode("utf-8")

    def count(v: Any, what: str) -> int:
        if v is None:
            return 0
        if type(v) is not int or v <= 0:
            raise InvalidError(f"viacodec: {what} {v!r} is not a positive int")
        return v

    return _ffi.VcHostOptions(
        listen=text(listen, "listen"),
        name=text(name, "name"),
        advertise=text(advertise, "advertise"),
        tls_cert_file=text(tls_cert, "tls_cert"),
        tls_key_file=text(tls_key, "tls_key"),
        tls_ca_file=text(tls_ca, "tls_ca"),
        tls_client_auth=1 if tls_client_auth else 0,
        allow_cleartext=1 if allow_cleartext else 0,
        http2=1 if http2 else 0,
        ref_threshold=_threshold(ref_threshold),
        concurrency=count(concurrency, "concurrency"),
        chunk_size=count(chunk_size, "chunk_size"),
        default_name=text(default_name, "default_name"),
    )


def check_host_options(**kw: Any) -> None:
    """Raises what Host(**kw) would for its options, without listening
    (vc_host_check): for a caller that makes its Hosts later."""
    _ffi.lib().vc_host_check(ctypes.byref(host_options(**kw)), ctypes.byref(_ffi.VcError()))


class Host:
    """A source and receiver of arrays by reference, in this process.

    It listens on ``listen`` (default a free loopback port; a port range
    such as ``"0.0.0.0:9000-9010"`` takes the first free port) and serves
    the batches its ``dumps`` publishes; its ``loads`` downloads
    referenced arrays from their sources, reporting ``name`` as the
    receiver id (default: its certificate's common name under TLS, else
    ``default_name``, else a random UUID). Use it as a context manager,
    or call close().

    >>> import numpy as np, viacodec
    >>> model = {"w": np.arange(1 << 20, dtype=np.float32)}
    >>> with viacodec.Host(name="server") as server, viacodec.Host(name="agent-1") as agent:
    ...     msg, tx = server.dumps({"round": 3, "model": model}, receivers=1)
    ...     got = agent.loads(msg)
    ...     outcome = tx.wait(timeout=30)
    >>> len(msg) < 200, bool((got["model"]["w"] == model["w"]).all())
    (True, True)
    >>> outcome.state.value, outcome.confirmed
    ('completed', ['agent-1'])

    Options: ``advertise`` is what receivers are told, for a server
    reached by another name: a base URL with its port
    (``"https://site-a.example:8443"``), or a host name or IP alone,
    advertised with the port the Host bound (``"site-a.example"``, the
    way to listen on port 0 or a range and still be reached by name; a
    Host listening on every interface needs it); ``tls_cert``/``tls_key`` (PEM files)
    make the server speak HTTPS and are presented as the client
    certificate; ``tls_ca`` is the CA that signs the peers (verifying
    their servers, and with ``tls_client_auth=True`` the clients this
    server accepts); ``ref_threshold`` is the smallest array in bytes sent
    by reference (default 1 MiB; 0 sends every array by reference but an
    empty one, which has nothing to download); ``concurrency`` and ``chunk_size`` tune
    downloads (default 4 ranges of 4 MiB at once); ``http2`` downloads
    over HTTP/2.

    Without TLS, a Host refuses to listen on, or advertise, an address
    that is not loopback (such as ``listen="0.0.0.0:0"``): the message's
    token, which lets anyone download its arrays, would cross the network
    in the clear. ``allow_cleartext=True`` lets it, on a network you
    trust; prefer TLS.

    A Host is safe to use from several threads at once. It hosts Go code:
    do not fork a process that has one (use multiprocessing's "spawn").
    """

    def __init__(
        self,
        listen: str = "127.0.0.1:0",
        name: Optional[str] = None,
        *,
        advertise: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
        tls_ca: Optional[str] = None,
        tls_client_auth: bool = False,
        ref_threshold: Optional[int] = None,
        concurrency: Optional[int] = None,
        chunk_size: Optional[int] = None,
        http2: bool = False,
        allow_cleartext: bool = False,
        default_name: Optional[str] = None,
    ) -> None:
        self._handle = 0
        self._closed = True
        self._lock = threading.Lock()
        self._txs: Dict[int, Transaction] = {}
        self._prune_at = _PRUNE_MIN  # prune when this many are tracked

        opts = host_options(
            listen,
            name,
            advertise=advertise,
            default_name=default_name,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_ca=tls_ca,
            tls_client_auth=tls_client_auth,
            ref_threshold=ref_threshold,
            concurrency=concurrency,
            chunk_size=chunk_size,
            http2=http2,
            allow_cleartext=allow_cleartext,
        )
        lib = _ffi.lib()
        self._handle = lib.host_new(opts)
        self._closed = False
        try:
            self.source: str = lib.host_string(lib.vc_host_source, self._handle)
            self.name: str = lib.host_string(lib.vc_host_name, self._handle)
        except BaseException:
            self.close()
            raise
        _live_hosts.add(self)

    # ---- life ----

    def _use(self) -> int:
        if self._closed:
            raise InvalidError("viacodec: the Host is closed")
        return self._handle

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stops the host: cancels its downloads in progress, ends its
        open transactions (state DELETED; their receivers fail) and closes
        its server, letting responses in progress finish for up to 2 s.
        Idempotent. Ctrl-C does not wait for that: the server then closes
        in the background."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            handle, txs = self._handle, list(self._txs.values())
        if _ffi.forked():
            return
        lib = _ffi.lib()

        def release() -> None:
            lib.release(handle)
            for tx in txs:
                tx._end_with_host()

        _in_worker(release)

    def __enter__(self) -> "Host":
        self._use()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<viacodec.Host {getattr(self, 'name', '?')!r} at {getattr(self, 'source', '?')} {state}>"

    def _forget(self, tx_handle: int) -> None:
        with self._lock:
            self._txs.pop(tx_handle, None)

    def _prune(self) -> None:
        """Finishes the transactions that have ended, so that their arrays
        are let go even when nobody waits on them."""
        with self._lock:
            txs = list(self._txs.values())
        for tx in txs:
            try:
                tx.status()
            except ViacodecError:  # pragma: no cover - finished meanwhile
                pass
        with self._lock:
            self._prune_at = max(_PRUNE_MIN, 2 * len(self._txs))

    def _maybe_prune(self) -> None:
        """Prunes when the tracked transactions have doubled since the last
        time: amortized O(1) per dumps, and ended transactions nobody
        waited on hold their arrays at most until then."""
        if len(self._txs) >= self._prune_at:
            self._prune()

    def stats(self) -> HostStats:
        """The host's counters."""
        c = _ffi.lib().host_stats(self._use())
        return HostStats(c.bytes_served, c.requests, c.open_transactions, c.receivers_active, c.conns_open)

    def transactions(self) -> List[Transaction]:
        """The transactions this host published that have not ended (as
        far as it has looked)."""
        self._prune()
        with self._lock:
            return list(self._txs.values())

    # ---- encode ----

    def dumps(
        self,
        obj: Any,
        receivers: Optional[int] = None,
        *,
        quorum: int = 0,
        timeout: Optional[float] = None,
        snapshot: bool = False,
        ref_threshold: Optional[int] = None,
        names: Optional[Sequence[str]] = None,
        max_receivers: int = 0,
        registry: Optional[Registry] = None,
        max_depth: int = 0,
    ) -> Tuple[bytes, Optional[Transaction]]:
        """Encodes obj with its large arrays by reference and publishes
        them: returns the message and its Transaction, or None when every
        array went inline (nothing to download).

        Arrays of ``ref_threshold`` bytes or more (default the Host's; 0:
        every array with a byte) become references; the same array twice
        is one download. LazyRefs
        in obj are forwarded as they are. ``receivers`` is how many
        confirmations complete the transaction (default 1; 0: unknown, the
        transaction then ends by timeout, "quorum met" when ``quorum`` —
        default 1 — confirmed); ``timeout`` is the inactivity timeout in
        seconds (default 300).

        ``names``, the receiver ids (Host names) expected, lets only them
        download and confirm: any other receiver's ``loads`` raises
        AuthError and leaves the transaction as it was. With names,
        ``receivers`` is at most their number, and left out (or 0) means
        all of them. Without TLS a name is what
        the receiver claims; under mutual TLS it is its certificate's.
        ``max_receivers`` bounds the receivers a transaction without names
        records (default the larger of 1024 and ``receivers``); one more
        gets LimitError.

        >>> import numpy as np, viacodec
        >>> with viacodec.Host(name="server") as server, viacodec.Host(name="site-1") as site:
        ...     msg, tx = server.dumps({"w": np.ones(1 << 18, np.float32)}, names=["site-1"])
        ...     w = site.loads(msg)["w"]
        ...     tx.wait(timeout=30).confirmed
        ['site-1']

        The arrays are served from their own memory: do not change them
        until the transaction has ended (Transaction.wait), or pass
        ``snapshot=True`` to copy them now. The Transaction (and the Host,
        until the transaction ends) keeps them alive: the Host lets go of
        an ended transaction that nobody waits on when it next looks
        (when its open transactions have doubled, on transactions(), or
        on close).
        """
        max_depth = check_max_depth(max_depth)
        if receivers is None:
            receivers = 1 if names is None else 0  # with names: all of them
        for v, what in ((receivers, "receivers"), (quorum, "quorum")):
            if type(v) is not int or v < 0:
                raise InvalidError(f"viacodec: {what} {v!r} is not an int >= 0")
        name_array, nnames = _names(names)
        max_receivers = _int64(max_receivers, "max_receivers")
        threshold = _threshold(ref_threshold)
        timeout_ns = 0 if timeout is None else _timeout_ns(timeout, "timeout")
        if timeout is not None and timeout_ns == 0:
            raise InvalidError("viacodec: timeout must be positive")
        lib = _ffi.lib()
        handle = self._use()
        self._maybe_prune()
        skel, w = _skeleton.write(obj, registry if registry is not None else default_registry, max_depth, BYTES_SLOT_MIN)
        cslots, keep = slot_table(w)
        opts = _ffi.VcPublishOptions(
            max_depth=max_depth,
            ref_threshold=threshold,
            receivers=receivers,
            quorum=quorum,
            names=ctypes.cast(name_array, ctypes.POINTER(ctypes.c_char_p)) if name_array is not None else None,
            names_len=nnames,
            max_receivers=max_receivers,
            timeout_ns=timeout_ns,
            snapshot=1 if snapshot else 0,
        )
        mh, size, txh = lib.host_encode(handle, skel, len(skel), cslots, len(w.keep), opts)
        try:
            msg = copy_message(lib, mh, size)
        except BaseException:
            if txh:
                lib.release(txh)
            raise
        del keep
        if not txh:
            return msg, None
        tx = Transaction(self, txh, None if snapshot else w.keep, receivers or nnames)
        with self._lock:
            closed = self._closed
            if not closed and tx._final is None:
                self._txs[txh] = tx
        if closed:  # closed meanwhile: its transaction was deleted
            tx._end_with_host()
        return msg, tx

    # ---- decode ----

    def loads(
        self,
        data: Any,
        *,
        pass_through: bool = False,
        timeout: Optional[float] = None,
        registry: Optional[Registry] = None,
        unknown: str = "object",
        max_depth: int = 0,
        max_elements: int = 0,
        max_byte_len: int = 0,
        max_message_size: int = 0,
        max_array_bytes: int = 0,
        tensors: str = "numpy",
    ) -> Any:
        """Decodes a message, downloading its referenced arrays straight
        into new numpy arrays (torch tensors with ``tensors="torch"``) (batch by batch in parallel, checksummed;
        each source gets a receipt naming this host).

        With ``pass_through=True`` nothing is downloaded: each referenced
        array is a LazyRef, which dumps forwards as it is (a relay's mode).
        ``timeout`` (seconds) bounds the downloads: ViacodecTimeoutError
        when it runs out; Ctrl-C (KeyboardInterrupt in the main thread)
        cancels them at once. All or nothing: on any error, or an
        interrupt, no value is returned and the Host stays usable. Limits
        and the other options are those of viacodec.loads (keywords only,
        as there); max_array_bytes counts downloads too.
        """
        ns = _timeout_ns(timeout)
        opts = dec_options(unknown, pass_through, (max_depth, max_elements, max_byte_len, max_message_size, max_array_bytes))
        torch = _torch.check_option(tensors)
        return _fetch_decode(self._use(), data, opts, ns, registry, unknown, weakref.ref(self), torch)

    def resolve(self, value: Any, *, timeout: Optional[float] = None, tensors: str = "numpy") -> Any:
        """Returns value with every LazyRef in it downloaded through this
        host (in dicts, lists, tuples, Map and Object data; in place for
        dicts and lists). See viacodec.resolve."""
        return resolve(value, host=self, timeout=timeout, tensors=tensors)


def _host_of(refs: Iterable[LazyRef], host: Optional[Host]) -> Optional[Host]:
    if host is not None:
        if not isinstance(host, Host):
            raise InvalidError(f"viacodec: host must be a viacodec.Host, not {type(host).__qualname__}")
        return host
    for r in refs:
        h = r._host() if r._host is not None else None
        if h is not None and not h.closed:
            return h
    return None


def _fetch_decode(handle: int, data: Any, opts: Any, ns: int, registry: Optional[Registry], unknown: str, host: Any, torch: bool = False) -> Any:
    """Decodes data through host handle (0: the library's own client),
    downloading its references into new numpy arrays (torch tensors)."""
    lib = _ffi.lib()
    view = _codec._input_view(data)
    dh, skel_addr, skel_len, specs, n = lib.host_decode(handle, view.ctypes.data, view.nbytes, opts)
    try:
        values, dst, refs = alloc_slots(specs, n, torch)
        if refs:
            done = threading.Event()
            _prefault.start(values, done)
            try:
                _interruptible(lib, dh, lambda: lib.decode_fetch(dh, dst, n, ns))
            finally:
                done.set()
        elif n:
            lib.decode_fetch(dh, dst, n, ns)  # copies only: nothing to wait for
        return decode_skeleton(skel_addr, skel_len, values, registry, unknown, host, torch)
    finally:
        lib.release(dh)
        del view


def _interruptible(lib: _ffi.Library, dh: int, fetch: Any) -> None:
    """Runs fetch, a download on decode handle dh, so that Ctrl-C ends it
    at once: an interrupt cancels the download through the library
    (vc_decode_cancel) and waits for it to return, which it does as soon
    as nothing writes to the arrays any more."""
    _in_worker(fetch, lambda: lib.decode_cancel(dh))


def _in_worker(call: Any, cancel: Any = None) -> Any:
    """Runs call, a library call that may block, so that Ctrl-C reaches
    the caller at once. Signals reach the main thread only: there the call
    runs in a worker thread while this one waits in short slices. On an
    exception here (KeyboardInterrupt), cancel() ends the call and the
    worker is waited for; without cancel, the call goes on to its own,
    bounded end in the background. Then the exception goes on."""
    if threading.current_thread() is not threading.main_thread():
        return call()
    result: List[Any] = []
    failed: List[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            failed.append(e)

    worker = threading.Thread(target=run, name="viacodec-call", daemon=True)
    try:
        worker.start()
    except RuntimeError:  # interpreter shutdown: no new threads
        return call()
    try:
        while worker.is_alive():
            worker.join(_SLICE)
    except BaseException:
        if cancel is not None:
            cancel()
            while worker.is_alive():  # ends at once: the call is cancelled
                try:
                    worker.join(_SLICE)
                except KeyboardInterrupt:
                    pass
        raise
    if failed:
        raise failed[0]
    return result[0] if result else None


def resolve_refs(refs: List[LazyRef], host: Optional[Host], timeout: Optional[float], tensors: str = "numpy") -> List[Any]:
    """Downloads refs into new numpy arrays (or torch tensors), one per distinct item, through
    host (or the Host that decoded them, or the library's own client).

    Resolving is decoding a message that holds the refs: the core checks
    their declared shapes against the limits before anything is allocated
    and downloads each distinct item once, all batches in parallel."""
    ns = _timeout_ns(timeout)
    torch = _torch.check_option(tensors)
    for r in refs:
        if not isinstance(r, LazyRef) or r._batch is None:
            raise InvalidError(f"viacodec: {r!r} is not a LazyRef")
    h = _host_of(refs, host)
    msg = _codec.dumps(list(refs))
    opts = dec_options("object", False, (0, 0, 0, 0, 0))
    return _fetch_decode(h._use() if h is not None else 0, msg, opts, ns, None, "object", None, torch)


def resolve(value: Any, host: Optional[Host] = None, *, timeout: Optional[float] = None, tensors: str = "numpy") -> Any:
    """Returns value with every LazyRef in it replaced by its downloaded
    numpy array (torch tensor with ``tensors="torch"``), all in one go
    (each batch fetched once, with one receipt).

    It looks into dicts, lists, tuples, Map and Object data (replacing in
    place in dicts, lists, Maps and Objects) but not into registered
    classes. host downloads (its name is the receiver id the sources
    record); by default the Host that decoded the LazyRefs if it is still
    open, else the library's own client (a random receiver id, no TLS).

    >>> import numpy as np, viacodec
    >>> with viacodec.Host() as source:
    ...     msg, tx = source.dumps({"a": np.ones(1 << 18), "b": np.zeros(1 << 18)})
    ...     relayed = viacodec.loads(msg, pass_through=True)
    ...     value = viacodec.resolve(relayed)
    ...     tx.wait(10).state.value
    'completed'
    >>> type(value["a"]).__name__, float(value["a"].sum())
    ('ndarray', 262144.0)
    """
    refs: List[LazyRef] = []
    _walk(value, lambda r: refs.append(r) or r)
    if not refs:
        return value
    it = iter(resolve_refs(refs, host, timeout, tensors))
    return _walk(value, lambda r: next(it))


def _walk(value: Any, f: Any) -> Any:
    """Returns value with f(r) in place of each LazyRef r, depth first:
    dicts, lists, Maps and Object data are changed in place, tuples
    rebuilt. Iterative, so that it follows any depth the codec does."""
    holder = [value]
    stack = [_Frame(holder)]
    while stack:
        fr = stack[-1]
        if fr.i == len(fr.positions):
            stack.pop()
            if fr.items is not None:  # a tuple: rebuild it in its parent
                parent = stack[-1]
                parent.put(parent.positions[parent.i - 1], tuple(fr.items))
            continue
        p = fr.positions[fr.i]
        fr.i += 1
        x = fr.get(p)
        if isinstance(x, LazyRef):
            fr.put(p, f(x))
        elif isinstance(x, _CONTAINERS):
            if len(stack) > _ffi.lib().limits().max_depth_limit:
                raise InvalidError("viacodec: value nests too deeply to resolve (a cycle?)")
            stack.append(_Frame(x))
    return holder[0]


_CONTAINERS = (dict, list, tuple, Object)


class _Frame:
    """A container being walked: its positions and the next one; a
    tuple's new items."""

    __slots__ = ("c", "positions", "i", "items")

    def __init__(self, c: Any) -> None:
        self.c = c
        self.i = 0
        self.items = list(c) if isinstance(c, tuple) else None
        if isinstance(c, dict):
            self.positions: Any = list(c)
        elif isinstance(c, Object):
            self.positions = ("data",)
        else:
            self.positions = range(len(c))

    def get(self, p: Any) -> Any:
        c = self.c
        if self.items is not None:
            return self.items[p]
        if isinstance(c, Map):
            return c[p][1]
        if isinstance(c, Object):
            return c.data
        return c[p]

    def put(self, p: Any, v: Any) -> None:
        c = self.c
        if self.items is not None:
            self.items[p] = v
        elif isinstance(c, Map):
            c[p] = (c[p][0], v)
        elif isinstance(c, Object):
            c.data = v
        else:
            c[p] = v
