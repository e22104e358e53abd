"""Relay: a pull-through caching relay (hostdl.Relay) in this process, for
a hop that forwards messages to many receivers: one copy from upstream per
relay instead of one per receiver."""

from __future__ import annotations

import ctypes
import threading
from typing import Any, NamedTuple, Optional

from . import _ffi
from ._errors import InvalidError
from ._interrupt import in_worker


class RelayStats(NamedTuple):
    """A Relay's counters."""

    batches: int  # batches held
    held_bytes: int  # bytes of pieces in memory now
    peak_bytes: int  # most bytes of pieces in memory at once
    upstream_bytes: int  # verified bytes fetched upstream
    upstream_pieces: int
    spilled_bytes: int  # bytes written to spill_dir
    refused: int  # requests refused while the budget was all in use
    bytes_served: int  # item bytes written to receivers


class Relay:
    """A pull-through caching relay: ``forward(msg)`` returns msg with its
    batches re-pointed at the relay; forward that instead, and every
    receiver downloads from the relay, which fetches each piece from
    upstream (the holder the message named, or its origin) once, checks it
    against the origin's checksums and serves it to all of them. Receipts
    go upstream under each receiver's name: the relay never counts as a
    receiver. It holds at most ``budget`` bytes of pieces in memory
    (default 256 MiB), spilling the rest to files in ``spill_dir`` if
    given (else dropping and fetching them again), and frees a batch when
    its receivers are done or idle. Relays chain.

    ``listen``, ``advertise``, the ``tls_*`` options and
    ``allow_cleartext`` are those of viacodec.Host (the certificate is
    also presented upstream; ``tls_ca`` verifies upstream servers).

    >>> import numpy as np, viacodec
    >>> with viacodec.Host(name="server") as server, viacodec.Relay() as relay, \\
    ...         viacodec.Host(name="a") as a, viacodec.Host(name="b") as b:
    ...     msg, tx = server.dumps({"w": np.ones(1 << 20, np.float32)}, names=["a", "b"])
    ...     fwd = relay.forward(msg)
    ...     ok = all(float(h.loads(fwd)["w"].sum()) == 1 << 20 for h in (a, b))
    ...     ok, tx.wait(timeout=30).confirmed, relay.stats().upstream_bytes == 4 << 20
    (True, ['a', 'b'], True)
    """

    def __init__(
        self,
        listen: str = "127.0.0.1:0",
        *,
        advertise: Optional[str] = None,
        tls_cert: Optional[str] = None,
        tls_key: Optional[str] = None,
        tls_ca: Optional[str] = None,
        tls_client_auth: bool = False,
        allow_cleartext: bool = False,
        budget: Optional[int] = None,
        spill_dir: Optional[str] = None,
    ) -> None:
        self._handle = 0
        self._lock = threading.Lock()
        if budget is not None and (type(budget) is not int or budget <= 0):
            raise InvalidError(f"viacodec: budget {budget!r} is not a positive int")
        opts = _ffi.VcRelayOptions(
            listen=_ffi.option_text(listen, "listen"),
            advertise=_ffi.option_text(advertise, "advertise"),
            tls_cert_file=_ffi.option_text(tls_cert, "tls_cert"),
            tls_key_file=_ffi.option_text(tls_key, "tls_key"),
            tls_ca_file=_ffi.option_text(tls_ca, "tls_ca"),
            tls_client_auth=1 if tls_client_auth else 0,
            allow_cleartext=1 if allow_cleartext else 0,
            budget=budget or 0,
            spill_dir=_ffi.option_text(spill_dir, "spill_dir"),
        )
        lib = _ffi.lib()
        handle = ctypes.c_int64()
        lib.vc_relay_new(ctypes.byref(opts), ctypes.byref(handle), ctypes.byref(_ffi.VcError()))
        self._handle = handle.value
        self.source: str = lib.host_string(lib.vc_relay_source, self._handle)

    def _use(self) -> int:
        if not self._handle:
            raise InvalidError("viacodec: the Relay is closed")
        return self._handle

    @property
    def closed(self) -> bool:
        return not self._handle

    def forward(self, msg: Any) -> bytes:
        """msg (a viacodec message, bytes-like) with every batch re-pointed
        at this relay, which holds them from now on."""
        data = bytes(msg)
        lib = _ffi.lib()
        out, n = ctypes.c_void_p(), ctypes.c_uint64()
        lib.vc_relay_forward(self._use(), data, len(data), ctypes.byref(out), ctypes.byref(n), ctypes.byref(_ffi.VcError()))
        try:
            return ctypes.string_at(out.value, n.value)
        finally:
            lib.vc_free(out)

    def stats(self) -> RelayStats:
        """The relay's counters."""
        c = _ffi.VcRelayCounters()
        _ffi.lib().vc_relay_stats(self._use(), ctypes.byref(c), ctypes.byref(_ffi.VcError()))
        return RelayStats(c.batches, c.held_bytes, c.peak_bytes, c.upstream_bytes, c.upstream_pieces, c.spilled_bytes, c.refused, c.bytes_served)

    def close(self) -> None:
        """Stops the relay: its receivers fail, what it holds is freed. Idempotent."""
        with self._lock:
            handle, self._handle = self._handle, 0
        if handle and not _ffi.forked():
            lib = _ffi.lib()
            in_worker(lambda: lib.release(handle))

    def __enter__(self) -> "Relay":
        self._use()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", 0):
            try:
                self.close()
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def __repr__(self) -> str:
        return f"<viacodec.Relay at {getattr(self, 'source', '?')} {'closed' if self.closed else 'open'}>"
