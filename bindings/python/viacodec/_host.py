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

Every call that can block answers Ctrl-C within a fraction of a second
(_interrupt): an interrupt cancels a download (vc_decode_cancel), joins
its worker and goes on as KeyboardInterrupt, leaving no partial value and
the Host usable.

The rest lives beside it: Transaction and its outcomes in _tx, decoding
with downloads (Host.loads, resolve) in _fetch, how arrays cross the C
ABI in _slots.
"""

from __future__ import annotations

import atexit
import os
import ctypes
import threading
import weakref
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import _ffi, _offload, _refs, _skeleton, _torch
from ._errors import InvalidError, ViacodecError
from ._fetch import fetch_decode, fetch_refs, walk
from ._interrupt import in_worker, timeout_ns
from ._refs import LazyRef
from ._slots import BYTES_SLOT_MIN, check_max_depth, copy_message, dec_options, slot_table
from ._tx import Transaction
from ._types import Registry, default_registry


class HostStats(NamedTuple):
    """A Host's counters."""

    bytes_served: int  # item bytes its server wrote to receivers
    requests: int  # requests its server answered
    open_transactions: int
    receivers_active: int  # started and not confirmed, over the open transactions
    conns_open: int


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


def _names(names: Any, what: str = "names") -> Tuple[Any, int]:
    """names as a C array of NUL-terminated strings and its length: (None,
    0) for None. The library checks the ids; the array lives as long as
    the first item returned."""
    if names is None:
        return None, 0
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise InvalidError(f"viacodec: {what} {names!r} is not a sequence of strings")
    encoded = []
    for i, n in enumerate(names):
        if not isinstance(n, str) or "\0" in n:
            raise InvalidError(f"viacodec: {what}[{i}] {n!r} is not a string without NUL characters")
        encoded.append(n.encode("utf-8", "surrogatepass"))
    return (ctypes.c_char_p * len(encoded))(*encoded), len(encoded)


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
    no_listen: bool = False,
    request_timeout: Optional[float] = None,
    retries: Optional[int] = None,
    store: Optional[str] = None,
    trusted_hops: Optional[Sequence[str]] = None,
) -> _ffi.VcHostOptions:
    """Host's options as the library takes them (vc_host_options); the
    library checks them (vc_host_new, vc_host_check). ``no_listen``: a
    Host that listens on nothing (``listen`` is then None)."""

    text = _ffi.option_text

    def count(v: Any, what: str) -> int:
        if v is None:
            return 0
        if type(v) is not int or v <= 0:
            raise InvalidError(f"viacodec: {what} {v!r} is not a positive int")
        return v

    hops, nhops = _names(trusted_hops, "trusted_hops")
    opts = _ffi.VcHostOptions(
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
        no_listen=1 if no_listen else 0,
        request_timeout_ns=_request_timeout(request_timeout),
        retries=_retries(retries),
        store=text(store, "store"),
        trusted_hops=ctypes.cast(hops, ctypes.POINTER(ctypes.c_char_p)) if hops is not None else None,
        trusted_hops_len=nhops,
    )
    opts._keep = hops  # the array lives as long as the options
    return opts


def _request_timeout(v: Any) -> int:
    """request_timeout in ns: 0 for the default (None); the library checks the range."""
    if v is None:
        return 0
    ns = timeout_ns(v, "request_timeout")
    if ns <= 0:
        raise InvalidError(f"viacodec: request_timeout {v!r} is not a positive number of seconds")
    return ns


def _retries(v: Any) -> int:
    """retries as the library takes them: 0 the default (None), -1 never (0)."""
    if v is None:
        return 0
    if type(v) is not int or v < 0:
        raise InvalidError(f"viacodec: retries {v!r} is not an int >= 0")
    return v if v > 0 else -1


def check_host_options(**kw: Any) -> None:
    """Raises what Host(**kw) would for its options, without listening
    (vc_host_check): for a caller that makes its Hosts later."""
    kw.setdefault("no_listen", "listen" in kw and kw["listen"] is None)  # as Host does
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

    ``request_timeout`` (seconds, default 30) fails a download request
    when no byte of it arrives for that long, connecting included, and
    ``retries`` (default 4; 0 never) is how often a failed request is
    tried again: a download whose source cannot be reached fails within
    about (retries + 1) × request_timeout.

    ``listen=None`` makes a Host that listens on nothing, for a site that
    can only dial out (behind NAT or a firewall): it downloads as any Host
    does, and publishes arrays by reference only by upload,
    ``dumps(obj, upload=grant)``, to a Host its receivers reach that
    granted it (``grant_upload`` there). Its ``source`` is ``""``.

    ``store="s3://bucket/prefix"`` makes an object store (S3 or any
    S3-compatible store) hold what the Host publishes: ``dumps`` uploads
    the arrays once, the message points its receivers at the object by a
    presigned URL (no credentials in it), and they download the bytes
    from the store with plain HTTP, asking this Host only for the manifest
    and the receipt; the objects are deleted when the transaction ends.
    Credentials, region and endpoint come from the AWS environment
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL_S3`` for a store that is not AWS's;
    ``~/.aws/credentials``), as for ``viacodec serve -store``.

    ``trusted_hops``, under mutual TLS (``tls_ca``), are the certificate
    names of the relays (viacodec.Relay) and holders that may ask and
    confirm for the receivers behind them: their receivers' receipts
    then count under the receivers' own names. Without it a relay
    cannot forward for anyone under mutual TLS, since its certificate
    names only itself.

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
        listen: Optional[str] = "127.0.0.1:0",
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
        request_timeout: Optional[float] = None,
        retries: Optional[int] = None,
        store: Optional[str] = None,
        trusted_hops: Optional[Sequence[str]] = None,
    ) -> None:
        self._handle = 0
        self._closed = True
        self._store = store is not None  # dumps uploads
        self._lock = threading.Lock()
        self._txs: Dict[int, Transaction] = {}
        self._prune_at = _PRUNE_MIN  # prune when this many are tracked

        opts = host_options(
            listen,
            name,
            no_listen=listen is None,
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
            request_timeout=request_timeout,
            retries=retries,
            store=store,
            trusted_hops=trusted_hops,
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

        in_worker(release)

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

    def grant_upload(self, max_bytes: int, timeout: Optional[float] = None) -> str:
        """Lets one source that cannot be reached (it only dials out, from
        behind NAT) upload one batch of at most ``max_bytes`` to this host
        within ``timeout`` seconds (default 5 minutes). Returns the grant:
        text to hand to the source, which passes it to its own
        ``Host.dumps(..., upload=grant)``. This host then serves the batch
        to its receivers, and reads it locally when it is one of them.
        Grants count against the host's upload budget (1 GiB) until their
        upload expires or its transaction ends: LimitError beyond it.

        >>> import numpy as np, viacodec
        >>> with viacodec.Host(name="server") as server, viacodec.Host(name="agent") as agent:
        ...     grant = server.grant_upload(8 << 20)
        ...     msg, tx = agent.dumps({"w": np.ones(1 << 18, np.float32)}, upload=grant)
        ...     w = server.loads(msg)["w"]
        ...     tx.wait(timeout=30).confirmed
        ['server']
        """
        if type(max_bytes) is not int or max_bytes <= 0:
            raise InvalidError(f"viacodec: max_bytes {max_bytes!r} is not an int > 0")
        ns = 0 if timeout is None else timeout_ns(timeout, "timeout")
        lib = _ffi.lib()
        out = ctypes.c_void_p()
        lib.vc_host_grant_upload(self._use(), max_bytes, ns, ctypes.byref(out), ctypes.byref(_ffi.VcError()))
        try:
            return ctypes.string_at(out.value).decode("utf-8")
        finally:
            lib.vc_free(out)

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
        upload: Optional[str] = None,
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

        ``upload``, a grant from another Host's grant_upload, publishes
        by uploading instead, for a host its receivers cannot reach: the
        arrays go to the grant's holder, which serves them and holds the
        transaction, and the message points there; the arrays are free
        when dumps returns, and wait() asks the holder for the outcome
        (abort() does nothing). An upload (to a grant's holder or to the
        Host's store) answers Ctrl-C at once: it is cancelled and no
        message is returned.

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
        tx_timeout = 0 if timeout is None else timeout_ns(timeout, "timeout")
        if timeout is not None and tx_timeout == 0:
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
            timeout_ns=tx_timeout,
            snapshot=1 if snapshot else 0,
            upload=upload.encode("utf-8") if upload else None,
        )
        if upload or self._store:  # an upload: Ctrl-C cancels it
            opts.cancel = lib.cancel_new()
            done: List[Tuple[int, int, int]] = []
            try:
                in_worker(lambda: done.append(lib.host_encode(handle, skel, len(skel), cslots, len(w.keep), opts)),
                          lambda: lib.cancel(opts.cancel))
            except BaseException:
                for mh, _, txh in done:  # it ended before the cancel
                    lib.release(mh)
                    if txh:
                        lib.release(txh)
                raise
            finally:
                lib.release(opts.cancel)
            mh, size, txh = done[0]
        else:
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
        tx = Transaction(self, txh, None if snapshot or upload else w.keep, receivers or nnames)
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
        offload: Optional[Union[str, "os.PathLike[str]"]] = None,
        offload_keep: bool = False,
    ) -> Any:
        """Decodes a message, downloading its referenced arrays straight
        into new numpy arrays, or torch tensors with ``tensors="torch"``
        (batch by batch in parallel, checksummed; each source gets a
        receipt naming this host).

        With ``offload=DIR`` the arrays land on disk instead of in memory,
        for messages bigger than RAM: one safetensors file in DIR (each
        array named by its path in the message, "model.w"), written as
        it downloads, and each array is a read-only ``numpy.memmap`` over
        it. The file is removed once the last array that views it is
        released, unless ``offload_keep=True``; ``safetensors.safe_open``
        (and so torch and jax) opens a kept one. Put DIR on a disk, not a
        tmpfs (that is RAM again).

        With ``pass_through=True`` nothing is downloaded: each referenced
        array is a LazyRef, which dumps forwards as it is (a relay's mode).
        ``timeout`` (seconds) bounds the downloads: ViacodecTimeoutError
        when it runs out; Ctrl-C (KeyboardInterrupt in the main thread)
        cancels them at once. All or nothing: on any error, or an
        interrupt, no value is returned and the Host stays usable. Limits
        and the other options are those of viacodec.loads (keywords only,
        as there); max_array_bytes counts downloads too.
        """
        ns = timeout_ns(timeout)
        dest = offload_option(offload, offload_keep, tensors)
        opts = dec_options(unknown, pass_through, (max_depth, max_elements, max_byte_len, max_message_size, max_array_bytes), dest is not None)
        torch = _torch.check_option(tensors)
        return fetch_decode(self._use(), data, opts, ns, registry, unknown, weakref.ref(self), torch, dest)

    def resolve(self, value: Any, *, timeout: Optional[float] = None, tensors: str = "numpy", offload: Any = None, offload_keep: bool = False) -> Any:
        """Returns value with every LazyRef in it downloaded through this
        host (in dicts, lists, tuples, Map and Object data; in place for
        dicts and lists). See viacodec.resolve."""
        return resolve(value, host=self, timeout=timeout, tensors=tensors, offload=offload, offload_keep=offload_keep)


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


def offload_option(offload: Any, keep: bool, tensors: str) -> Optional[Tuple[str, bool]]:
    """Checks the offload options: (directory, keep), or None."""
    if offload is None:
        return None
    if tensors != "numpy":
        raise InvalidError(f'viacodec: offload gives numpy memmaps: tensors={tensors!r} does not go with it (torch.from_numpy views them)')
    return _offload.check_dir(offload), bool(keep)


def resolve_refs(refs: List[LazyRef], host: Optional[Host], timeout: Optional[float], tensors: str = "numpy", offload: Any = None, offload_keep: bool = False) -> List[Any]:
    """Downloads refs into new numpy arrays (or torch tensors, or memmaps
    of a file in offload), one per distinct item, through host (or the
    Host that decoded them, or the library's own client)."""
    ns = timeout_ns(timeout)
    dest = offload_option(offload, offload_keep, tensors)
    torch = _torch.check_option(tensors)
    for r in refs:
        if not isinstance(r, LazyRef) or r._batch is None:
            raise InvalidError(f"viacodec: {r!r} is not a LazyRef")
    h = _host_of(refs, host)
    return fetch_refs(h._use() if h is not None else 0, refs, ns, torch, dest)


# LazyRef.resolve downloads through here (_refs sits below the decoding
# that resolving needs).
_refs.set_resolver(resolve_refs)


def resolve(value: Any, host: Optional[Host] = None, *, timeout: Optional[float] = None, tensors: str = "numpy", offload: Any = None, offload_keep: bool = False) -> Any:
    """Returns value with every LazyRef in it replaced by its downloaded
    numpy array (torch tensor with ``tensors="torch"``), all in one go
    (each batch fetched once, with one receipt).

    It looks into dicts, lists, tuples, Map and Object data (replacing in
    place in dicts, lists, Maps and Objects) but not into registered
    classes. host downloads (its name is the receiver id the sources
    record); by default the Host that decoded the LazyRefs if it is still
    open, else the library's own client (a random receiver id, no TLS).
    ``offload=DIR`` lands the arrays in one file in DIR and returns
    read-only numpy.memmap arrays over it, as Host.loads does.

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
    walk(value, lambda r: refs.append(r) or r)
    if not refs:
        return value
    it = iter(resolve_refs(refs, host, timeout, tensors, offload, offload_keep))
    return walk(value, lambda r: next(it))
