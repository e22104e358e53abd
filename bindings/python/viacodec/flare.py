"""viacodec under NVIDIA FLARE's own messages (docs/flare.md).

One call makes FLARE's FOBS serializer send numpy arrays (and torch
tensors, when torch is installed) the viacodec way:

    import viacodec.flare
    viacodec.flare.register()

FLARE keeps its cells, channels, message headers and FOBS; what changes is
how the arrays inside a message travel. All the arrays of one message
(in dicts, lists, DXOs, FLModels, at any depth) go into one viacodec
message, carried as one FOBS datum. Arrays of ``ref_threshold`` bytes or
more go by reference: the sending cell's Host publishes them and the
receiving cell downloads them straight into numpy arrays; smaller ones
travel inline in the datum. In the msgpack body each array is a small
placeholder (its index in that viacodec message).

- **Hosts**: each cell that sends arrays by reference, or downloads them,
  gets one viacodec Host, named after the cell's fully qualified name
  (FQCN): that name is the receiver id sources record (under TLS with a
  certificate, its common name). FLARE runs one cell per process, so
  that is one Host per process; several cells in one
  process (the simulator, tests) get one each. A Host opens on first use
  and closes when its cell stops (checked at each use), at unregister(),
  or at exit. It listens where register() says (default: loopback, a free
  port) and serves TLS with the files register() names, or with the
  cell's own FLARE credentials (``tls_from_cell=True``).
- **Across sites** (docs/flare.md): a process that cannot be reached
  registers with ``listen=None`` and uploads what it sends by reference
  to the receiving cell's Host, under a grant that cell answers over the
  cell connection (channel ``"viacodec"``, topic ``"upload_grant"``); a
  forwarding process with ``relay_budget`` serves what it forwards
  through one caching relay (one copy from upstream however many
  receivers); ``request_timeout`` and ``retries`` bound a download whose
  source cannot be reached (about 30 s by default).
- **Pass-through**: a cell that decodes with FLARE's pass-through flag
  (``FOBSContextKey.PASS_THROUGH``, set by the ``PASS_THROUGH`` message
  header or the cell's pass-through channels) downloads nothing: each
  referenced array is a viacodec.LazyRef, and encoding the message again
  writes the same references, pointing at the original source, next to
  any fresh arrays the cell adds. Only final consumers download and
  confirm; a forwarding cell never appears among a source's receivers.
- **Completion**: the transaction a send opened expects FLARE's
  ``NUM_RECEIVERS`` receivers and ends after the message root's TTL (or
  ``timeout``) without activity. When it ends, the context's
  ``FOBSContextKey.DOWNLOAD_COMPLETE_CB`` is called as FLARE calls it:
  ``cb(tx_id, status, base_objs)`` with status ``"finished"``,
  ``"timeout"`` or ``"deleted"``. ``transactions(message)`` gives the
  viacodec Transactions a sent message opened.
- **Errors**: a download that fails (a source that died, an expired or
  unknown reference, a timeout, a checksum) raises the viacodec error
  from FLARE's decode: the receiver never sees a partial value.
- **Exit**: with ``exit_wait``, a process that sends and exits (a trainer
  sending its result) waits at exit for its transactions to end.

Both ends must register: a message from a peer that did not register
decodes as before (the previous numpy decomposer still handles FLARE's
own format), but a peer that did not register cannot decode ours (FLARE
reports that no handler serves Datum Object Type ``DOT``).
unregister() turns it off. Tested with nvflare 2.9.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import importlib
import logging
import os
import threading
import time
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import viacodec
from viacodec import Host, InvalidError, LazyRef, Relay, Transaction, TxState, _torch

try:
    import nvflare
    from nvflare.app_common.decomposers import numpy_decomposers
    from nvflare.fuel.f3.cellnet.cell import Cell
    from nvflare.fuel.f3.cellnet.core_cell import CoreCell
    from nvflare.fuel.f3.cellnet.defs import MessageHeaderKey, ReturnCode
    from nvflare.fuel.f3.cellnet.fqcn import FQCN
    from nvflare.fuel.f3.cellnet.utils import make_reply
    from nvflare.fuel.f3.drivers.driver_params import DriverParams
    from nvflare.fuel.f3.message import Message
    from nvflare.fuel.f3.streaming.transfer_outcome import TransactionDoneStatus
    from nvflare.fuel.utils import fobs
    from nvflare.fuel.utils.fobs import FOBSContextKey
    from nvflare.fuel.utils.fobs.datum import Datum, DatumManager, DatumType
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError("viacodec.flare needs NVIDIA FLARE: pip install 'viacodec[flare]'") from e

__all__ = ["register", "unregister", "registered", "host", "transactions", "DOT", "TESTED_FLARE"]

#: The Datum Object Type of the datum that carries a message's viacodec
#: message ("V"). FLARE's own are 1 to 6 (nvflare.fuel.utils.fobs.dots).
DOT = 0x56

#: The FLARE releases this module is tested with (the "flare" extra pins them).
TESTED_FLARE = "2.9"

if not str(getattr(nvflare, "__version__", "")).startswith(TESTED_FLARE + "."):  # pragma: no cover
    warnings.warn(
        f"viacodec.flare is tested with nvflare {TESTED_FLARE}.x, not {getattr(nvflare, '__version__', '?')}",
        stacklevel=2,
    )

_log = logging.getLogger(__name__)

# FOBS keeps its decomposers in module dicts, and fobs.register never
# replaces one: switching numpy.ndarray to ours means writing there.
_fobs = importlib.import_module("nvflare.fuel.utils.fobs.fobs")
_ARRAY_TYPE = "numpy.ndarray"
_TENSOR_TYPE = "torch.Tensor"

# fobs_ctx keys of one message's encode and decode
_ENC_KEY = "viacodec.flare.encoding"
_DEC_KEY = "viacodec.flare.items"
# the Message property transactions() reads
_TX_PROP = "viacodec_transactions"
# the cell request a process that cannot be reached makes for an upload
# grant, and the holding cell answers
GRANT_CHANNEL = "viacodec"
GRANT_TOPIC = "upload_grant"


@dataclasses.dataclass(frozen=True)
class _Options:
    listen: Optional[str]
    advertise_host: Optional[str]
    tls_cert: Optional[str]
    tls_key: Optional[str]
    tls_ca: Optional[str]
    tls_client_auth: bool
    tls_from_cell: bool
    ref_threshold: int
    concurrency: Optional[int]
    chunk_size: Optional[int]
    http2: bool
    allow_cleartext: bool
    timeout: float
    download_timeout: Optional[float]
    snapshot: bool
    exit_wait: float
    offload_dir: Optional[str]
    upload_to: Optional[str]
    grant_timeout: float
    request_timeout: float
    retries: int
    relay_budget: Optional[int]
    store: Optional[str]
    trusted_hops: Optional[Tuple[str, ...]]

    def host_kwargs(self, core: Optional[CoreCell]) -> Dict[str, Any]:
        """viacodec.Host's options for the Host of a cell (core None:
        those that do not depend on the cell)."""
        kw: Dict[str, Any] = {
            "listen": self.listen,
            "advertise": self.advertise_host,
            "tls_cert": self.tls_cert,
            "tls_key": self.tls_key,
            "tls_ca": self.tls_ca,
            "tls_client_auth": self.tls_client_auth,
            "ref_threshold": self.ref_threshold,
            "concurrency": self.concurrency,
            "chunk_size": self.chunk_size,
            "http2": self.http2,
            "allow_cleartext": self.allow_cleartext,
            "request_timeout": self.request_timeout,
            "retries": self.retries,
            "store": self.store,
            "trusted_hops": self.trusted_hops,
        }
        if self.tls_from_cell and core is not None:
            kw.update(_cell_tls(core))
        return kw

    def check(self) -> None:
        """Refuses, now, the Host options no cell's Host could start with
        (the library's own check; no port is taken). With
        tls_from_cell, each cell's credentials come later: the check
        assumes TLS then."""
        kw = self.host_kwargs(None)
        if self.tls_from_cell:
            kw["allow_cleartext"] = True  # it will have TLS: what cleartext allows does not apply
        viacodec._host.check_host_options(**kw)


def _cell_tls(core: CoreCell) -> Dict[str, Any]:
    """Mutual TLS from the cell's own credentials (FLARE's startup kit):
    its CA, and its server certificate and key if it has them, else its
    client certificate and key."""
    fqcn = core.get_fqcn()
    creds = core.fobs_ctx.get(FOBSContextKey.SEC_CREDS) or {}
    if not core.secure or not creds:
        raise InvalidError(f"viacodec.flare: cell {fqcn} has no secure credentials to serve TLS with (tls_from_cell)")
    ca = creds.get(DriverParams.CA_CERT.value)
    for cert_key, key_key in ((DriverParams.SERVER_CERT, DriverParams.SERVER_KEY), (DriverParams.CLIENT_CERT, DriverParams.CLIENT_KEY)):
        cert, key = creds.get(cert_key.value), creds.get(key_key.value)
        if ca and cert and key:
            return {"tls_ca": ca, "tls_cert": cert, "tls_key": key, "tls_client_auth": True}
    raise InvalidError(f"viacodec.flare: the credentials of cell {fqcn} lack a CA, or a certificate and its key")


def _seconds(v: Any, what: str, optional: bool) -> Optional[float]:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
        raise InvalidError(f"viacodec.flare: {what} {v!r} is not a positive number of seconds")
    return float(v)


# ---- the decomposers ----


def _core(cell: Any) -> Optional[CoreCell]:
    """The CoreCell of a Cell or CoreCell, else None. (A Cell answers
    every unknown attribute with a method, so no getattr probing.)"""
    if isinstance(cell, Cell):
        return cell.core_cell
    if isinstance(cell, CoreCell):
        return cell
    return None


def _cell_of(fobs_ctx: dict) -> Optional[CoreCell]:
    return _core(fobs_ctx.get(FOBSContextKey.CELL)) or _core(fobs_ctx.get(FOBSContextKey.CORE_CELL))


@functools.lru_cache(maxsize=None)
def _viacodec_dtype(dtype: np.dtype) -> bool:
    """Whether viacodec encodes arrays of dtype (else FLARE's decomposer does)."""
    try:
        viacodec.dumps(np.empty(0, dtype))
        return True
    except Exception:  # noqa: BLE001 - any refusal means: not ours
        return False


def _flare_tensor_decomposer() -> Optional[type]:
    """FLARE's TensorDecomposer when torch and FLARE's PyTorch support
    import, else None (then torch tensors are left to FLARE)."""
    try:
        from nvflare.app_opt.pt.decomposers import TensorDecomposer
    except ImportError:
        return None
    return TensorDecomposer


class _TensorLazyRef(LazyRef):
    """A reference to a torch tensor, at a cell that decoded with
    pass-through: forwarded as it is, and the final receiver gets a torch
    tensor (resolve() gives one too)."""

    __slots__ = ()

    @classmethod
    def of(cls, r: LazyRef) -> "_TensorLazyRef":
        return cls(r._batch, r._item, r._dtype, r._shape, r._order, r._host)

    def resolve(self, host: Any = None, *, timeout: Optional[float] = None, tensors: str = "torch", offload: Any = None, offload_keep: bool = False) -> Any:
        if offload is not None:  # numpy memmaps over the file, as tensors viewing them
            return _as_tensor(super().resolve(host, timeout=timeout, offload=offload, offload_keep=offload_keep))
        return super().resolve(host, timeout=timeout, tensors=tensors)


def _as_numpy(v: Any) -> Any:
    """An item as a numpy array (the decoded tensor's memory, no copy)."""
    return _torch.to_numpy(v) if _torch.is_tensor(v) else v


def _as_tensor(v: Any) -> Any:
    """An item of a torch tensor (decoded as one) as it is; an offloaded
    one (a numpy.memmap) as a tensor viewing it; a LazyRef as a
    _TensorLazyRef."""
    if isinstance(v, LazyRef) and type(v) is not _TensorLazyRef:
        return _TensorLazyRef.of(v)
    if isinstance(v, np.memmap):
        return _torch.from_mapped(v)
    return v


def _ours(target: Any) -> bool:
    """Whether viacodec sends target (else the previous decomposer does)."""
    if isinstance(target, np.ndarray):
        return _viacodec_dtype(target.dtype)
    if _torch.is_tensor(target):
        return _torch.sendable(target)
    return True


class _Encoding:
    """The arrays and LazyRefs of one message being encoded, in order;
    the same object twice is one item."""

    def __init__(self) -> None:
        self.items: List[Any] = []
        self.index: Dict[int, int] = {}
        self.tx: Optional[Transaction] = None

    def add(self, obj: Any) -> int:
        i = self.index.get(id(obj))
        if i is None:
            i = self.index[id(obj)] = len(self.items)
            self.items.append(obj)  # keeps obj alive, so id() stays unique
        return i


class _Decomposer(fobs.Decomposer):
    """Writes an array (or a LazyRef) as its index in the message's
    viacodec datum, and reads it back from there."""

    def __init__(self, adapter: "_Adapter", supported: type, previous: Optional[fobs.Decomposer], convert: Callable[[Any], Any] = _as_numpy) -> None:
        self._adapter = adapter
        self._supported = supported
        self._previous = previous  # FLARE's, for arrays and messages in its format
        self._convert = convert  # a decoded item as the supported type

    def supported_type(self) -> type:
        return self._supported

    def decompose(self, target: Any, manager: Optional[DatumManager] = None) -> Any:
        if manager is None:
            raise RuntimeError("viacodec.flare: FOBS gave no DatumManager")
        if self._previous is not None and not _ours(target):
            return self._previous.decompose(target, manager)
        ctx = manager.fobs_ctx
        enc = ctx.get(_ENC_KEY)
        if enc is None:
            enc = ctx[_ENC_KEY] = _Encoding()
            manager.register_post_cb(self._adapter.encode_items)
        return enc.add(target)

    def recompose(self, data: Any, manager: Optional[DatumManager] = None) -> Any:
        if type(data) is not int:
            if self._previous is not None:
                return self._previous.recompose(data, manager)
            raise RuntimeError(f"viacodec.flare: an array placeholder is {type(data).__name__}, not an index")
        items = manager.fobs_ctx.get(_DEC_KEY) if manager is not None else None
        if items is None:
            raise RuntimeError("viacodec.flare: an array placeholder without its viacodec datum")
        if not 0 <= data < len(items):
            raise RuntimeError(f"viacodec.flare: array placeholder {data} is outside the datum's {len(items)} items")
        return self._convert(items[data])


class _ArrayDecomposer(_Decomposer):
    """numpy.ndarray; it also handles the datum (process_datum)."""

    def supported_dots(self) -> List[int]:
        return [DOT]

    def process_datum(self, datum: Datum, manager: DatumManager) -> None:
        self._adapter.decode_items(datum, manager)


class _Adapter:
    """What register() installs: the decomposers, the options, and the
    Hosts of the cells in this process."""

    def __init__(self, opts: _Options, torch: bool = False) -> None:
        self.opts = opts
        self.torch = torch  # torch tensors are ours: decode into tensors
        self._lock = threading.Lock()
        self._hosts: Dict[str, Tuple["weakref.ref[CoreCell]", Host]] = {}
        self._granting: "weakref.WeakSet[CoreCell]" = weakref.WeakSet()  # cells that answer grant requests
        self._relay: Optional[Relay] = None  # with relay_budget: the process's caching relay
        self._closed = False

    # ---- hosts ----

    def host(self, cell: Any) -> Host:
        core = _core(cell)
        if core is None:
            raise InvalidError(f"viacodec.flare: {type(cell).__name__} is not a FLARE Cell or CoreCell")
        fqcn = core.get_fqcn()
        self.grant_uploads(core)
        stale: List[Host] = []
        try:
            with self._lock:
                if self._closed:
                    raise InvalidError("viacodec.flare: unregistered")
                stale = self._prune_locked()
                got = self._hosts.get(fqcn)
                if got is not None and got[0]() is core and not got[1].closed:
                    return got[1]
                if got is not None:
                    stale.append(got[1])
                if _stopped(core):
                    raise InvalidError(f"viacodec.flare: cell {fqcn} has stopped")
                # the receiver id: the certificate's common name if it has
                # one (the library decides), else the FQCN
                h = Host(default_name=fqcn, **self.opts.host_kwargs(core))
                self._hosts[fqcn] = (weakref.ref(core), h)
                return h
        finally:
            for h in stale:
                h.close()

    # ---- uploads: a process that cannot be reached, and its holder ----

    def grant_uploads(self, core: Optional[CoreCell]) -> None:
        """Makes core answer the grant requests of cells that cannot be
        reached (a process that registered with listen=None), once. A
        process that listens on nothing grants none."""
        if core is None or self.opts.listen is None:
            return
        with self._lock:
            if self._closed or core in self._granting:
                return
            self._granting.add(core)
        core.register_request_cb(GRANT_CHANNEL, GRANT_TOPIC, self._answer_grant, weakref.ref(core))

    def _answer_grant(self, request: Message, ref: "weakref.ref[CoreCell]") -> Message:
        """A grant for the asking cell's upload, on this cell's Host."""
        core = ref()
        p = request.payload
        try:
            if core is None or self._closed:
                raise InvalidError("viacodec.flare is not registered here any more")
            if not isinstance(p, dict) or type(p.get("max_bytes")) is not int or not isinstance(p.get("timeout"), (int, float)):
                raise InvalidError(f"a grant request is {{'max_bytes': int, 'timeout': seconds}}, not {p!r}")
            grant = self.host(core).grant_upload(p["max_bytes"], timeout=p["timeout"])
        except Exception as e:  # noqa: BLE001 - the asking cell reports it
            return make_reply(ReturnCode.PROCESS_EXCEPTION, error=f"viacodec.flare: no upload grant: {e}")
        return make_reply(ReturnCode.OK, body={"grant": grant})

    def holder(self, core: CoreCell, ctx: dict) -> str:
        """The cell a process that cannot be reached uploads to: upload_to
        (its "{job}" the sender's job id: "server.{job}"), else the
        message's destination, else its one receiver, else the server
        cell of the sender's job ("server.<job>" for a cell
        "site-1.<job>...", "server" for a root cell)."""
        job = core.get_fqcn().split(".")[1:2]
        if self.opts.upload_to:
            return self.opts.upload_to.replace(".{job}", "." + job[0] if job else "").replace("{job}", job[0] if job else "")
        msg = ctx.get(FOBSContextKey.MESSAGE)
        dest = msg.get_header(MessageHeaderKey.DESTINATION) if isinstance(msg, Message) else None
        if isinstance(dest, str) and dest:
            return dest
        ids = ctx.get(FOBSContextKey.RECEIVER_IDS)
        if isinstance(ids, (list, tuple)) and len(ids) == 1 and isinstance(ids[0], str):
            return ids[0]
        return ".".join([FQCN.ROOT_SERVER] + job)

    def ask_grant(self, core: CoreCell, ctx: dict, nbytes: int) -> str:
        """An upload grant for nbytes from the holding cell, over the cell
        connection this process already has (it dials out)."""
        target = self.holder(core, ctx)
        req = Message(payload={"max_bytes": max(nbytes, 1), "timeout": self.opts.timeout})
        reply = core.send_request(channel=GRANT_CHANNEL, topic=GRANT_TOPIC, target=target, request=req, timeout=self.opts.grant_timeout)
        rc = reply.get_header(MessageHeaderKey.RETURN_CODE)
        grant = reply.payload.get("grant") if isinstance(reply.payload, dict) else None
        if rc != ReturnCode.OK or not isinstance(grant, str):
            why = reply.get_header(MessageHeaderKey.ERROR) or rc
            raise InvalidError(
                f"viacodec.flare: {core.get_fqcn()} listens on nothing (listen=None) and {target} granted it no upload ({why}): "
                f"the holder must run register() with a listen address"
            )
        return grant

    def _prune_locked(self) -> List[Host]:
        """Forgets the Hosts of cells that stopped or are gone; returns them to close."""
        gone = []
        for fqcn, (ref, h) in list(self._hosts.items()):
            core = ref()
            if core is None or _stopped(core) or h.closed:
                del self._hosts[fqcn]
                gone.append(h)
        return gone

    def drain(self, seconds: float) -> None:
        """Waits up to seconds, in all, for the Hosts' open transactions to end."""
        deadline = time.monotonic() + seconds
        with self._lock:
            hosts = [h for _, h in self._hosts.values()]
        for h in hosts:
            for tx in h.transactions() if not h.closed else []:
                try:
                    tx.wait(timeout=max(0.0, deadline - time.monotonic()))
                except viacodec.ViacodecError:  # timed out, or the Host closed meanwhile
                    pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            hosts = [h for _, h in self._hosts.values()]
            self._hosts.clear()
            relay, self._relay = self._relay, None
        if relay is not None:
            relay.close()
        for h in hosts:
            h.close()

    def relay(self, core: CoreCell) -> Relay:
        """The process's caching relay (relay_budget), opened on first use
        with the Hosts' address and TLS options (the first forwarding
        cell's, with tls_from_cell)."""
        with self._lock:
            if self._closed:
                raise InvalidError("viacodec.flare: unregistered")
            if self._relay is None or self._relay.closed:
                kw = self.opts.host_kwargs(core)
                self._relay = Relay(
                    kw["listen"],
                    advertise=kw["advertise"],
                    tls_cert=kw["tls_cert"],
                    tls_key=kw["tls_key"],
                    tls_ca=kw["tls_ca"],
                    tls_client_auth=kw["tls_client_auth"],
                    allow_cleartext=kw["allow_cleartext"],
                    budget=self.opts.relay_budget,
                )
            return self._relay

    # ---- encode (FOBS post callbacks) ----

    def encode_items(self, mgr: DatumManager) -> None:
        """After the body is packed: one viacodec message of every array
        and LazyRef, by reference through the cell's Host, as one datum."""
        if mgr.get_error():
            return
        ctx = mgr.fobs_ctx
        enc: _Encoding = ctx[_ENC_KEY]
        cell = _cell_of(ctx)
        tx: Optional[Transaction] = None
        try:
            big = self.opts.ref_threshold
            self.grant_uploads(cell)
            by_ref = sum(int(x.nbytes) for x in enc.items if not isinstance(x, LazyRef) and x.nbytes >= big)
            if cell is None or by_ref == 0:
                # no cell, or nothing to publish: inline, LazyRefs written back as they are
                data, tx = viacodec.dumps(enc.items), None
            else:
                # a process that cannot be reached uploads to a cell that can be
                upload = self.ask_grant(cell, ctx, by_ref) if self.opts.listen is None else None
                data, tx = self.host(cell).dumps(
                    enc.items,
                    receivers=_num_receivers(ctx),
                    timeout=self._timeout(ctx),
                    snapshot=self.opts.snapshot,
                    upload=upload,
                )
            if self.opts.relay_budget is not None and cell is not None and any(isinstance(x, LazyRef) for x in enc.items):
                # a forwarding cell: its receivers download through this process's relay
                data = self.relay(cell).forward(data)
        except Exception as e:  # noqa: BLE001 - FOBS reports it as the message's error
            if tx is not None:
                tx.abort()
            mgr.set_error(f"viacodec.flare: encoding {len(enc.items)} arrays failed: {e}")
            return
        mgr.add_datum(Datum(DatumType.BLOB, data, dot=DOT))
        if tx is not None:
            enc.tx = tx
            mgr.register_post_cb(self.settle)

    def settle(self, mgr: DatumManager) -> None:
        """Last: abort the transaction if the message failed; else hand it
        to the message, and watch it until it ends."""
        ctx = mgr.fobs_ctx
        enc: _Encoding = ctx[_ENC_KEY]
        tx = enc.tx
        if mgr.get_error():
            tx.abort()
            return
        msg = ctx.get(FOBSContextKey.MESSAGE)
        if isinstance(msg, Message):
            msg.set_prop(_TX_PROP, msg.get_prop(_TX_PROP, []) + [tx])
        cb = ctx.get(FOBSContextKey.DOWNLOAD_COMPLETE_CB)
        sent = {i: x for i, x in enumerate(enc.items) if not isinstance(x, LazyRef)} if cb is not None else {}
        threading.Thread(target=_watch, args=(tx, cb, sent), name=f"viacodec.flare tx {tx.ref_id}", daemon=True).start()

    def _timeout(self, ctx: dict) -> float:
        """The inactivity timeout: the message root's TTL, at least the option."""
        t = self.opts.timeout
        msg = ctx.get(FOBSContextKey.MESSAGE)
        if isinstance(msg, Message):
            ttl = msg.get_header(MessageHeaderKey.MSG_ROOT_TTL)
            if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl > t:
                t = float(ttl)
        return t

    # ---- decode (FOBS process_datum, before the body is unpacked) ----

    def decode_items(self, datum: Datum, mgr: DatumManager) -> None:
        ctx = mgr.fobs_ctx
        if _DEC_KEY in ctx:
            raise RuntimeError("viacodec.flare: a message with two viacodec datums")
        data = datum.value
        if datum.datum_type != DatumType.BLOB or not isinstance(data, (bytes, bytearray, memoryview)):
            raise RuntimeError(f"viacodec.flare: the viacodec datum is {datum.datum_type}, not bytes")
        # With torch, every item decodes into a tensor, which the numpy
        # decomposer views as an array: no copy either way, and bfloat16
        # and float8 tensors need no ml_dtypes.
        # Offloaded, every item is a read-only numpy.memmap over a file in
        # offload_dir (a torch tensor views it: _as_tensor).
        tensors = "torch" if self.torch and self.opts.offload_dir is None else "numpy"
        off = self.opts.offload_dir
        self.grant_uploads(_cell_of(ctx))
        if ctx.get(FOBSContextKey.PASS_THROUGH):
            items = viacodec.loads(data, pass_through=True, tensors=tensors)
        else:
            cell = _cell_of(ctx)
            if cell is not None:
                items = self.host(cell).loads(data, pass_through=False, timeout=self.opts.download_timeout, tensors=tensors, offload=off)
            else:  # no cell to name the receiver: the library's own client
                items = viacodec.resolve(
                    viacodec.loads(data, pass_through=True, tensors=tensors), timeout=self.opts.download_timeout, tensors=tensors, offload=off
                )
        if not isinstance(items, list):
            raise RuntimeError(f"viacodec.flare: the viacodec datum holds {type(items).__name__}, not a list")
        ctx[_DEC_KEY] = items


def _offload_dir(d: Any) -> Optional[str]:
    """Checks offload_dir: None, or a directory that exists."""
    if d is None:
        return None
    d = viacodec._offload.check_dir(d)
    if not os.path.isdir(d):
        raise InvalidError(f"viacodec.flare: offload_dir {d!r} is not a directory")
    return os.path.abspath(d)


def _stopped(core: CoreCell) -> bool:
    return bool(core.stopping or core.asked_to_stop)


def _num_receivers(ctx: dict) -> int:
    n = ctx.get(FOBSContextKey.NUM_RECEIVERS)
    return n if type(n) is int and n > 0 else 1


#: viacodec's final states as FLARE's TransactionDoneStatus
_DONE_STATUS = {
    TxState.COMPLETED: TransactionDoneStatus.FINISHED,
    TxState.QUORUM_MET: TransactionDoneStatus.TIMEOUT,
    TxState.TIMED_OUT: TransactionDoneStatus.TIMEOUT,
    TxState.ABORTED: TransactionDoneStatus.DELETED,
    TxState.DELETED: TransactionDoneStatus.DELETED,
}


def _watch(tx: Transaction, cb: Optional[Callable[..., Any]], sent: Dict[int, np.ndarray]) -> None:
    """Waits for tx to end, so that its arrays are let go as soon as it
    has (nobody in FLARE waits on it), then calls FLARE's download-complete
    callback, if any, with the arrays it published (by index), as FLARE
    passes the objects its transaction served."""
    out = tx.wait()
    if cb is None:
        return
    try:
        cb(out.ref_id, _DONE_STATUS[out.state], [sent])
    except Exception:  # noqa: BLE001 - logged, as FLARE does
        _log.exception("viacodec.flare: the download-complete callback of transaction %s raised", out.ref_id)


# ---- the switch ----

_lock = threading.Lock()
# the adapter, and what our decomposers replaced, by FOBS type name
_installed: Optional[Tuple[_Adapter, Dict[str, Optional[fobs.Decomposer]]]] = None


def register(
    *,
    listen: Optional[str] = "127.0.0.1:0",
    advertise_host: Optional[str] = None,
    tls_cert: Optional[str] = None,
    tls_key: Optional[str] = None,
    tls_ca: Optional[str] = None,
    tls_client_auth: bool = False,
    tls_from_cell: bool = False,
    ref_threshold: int = 1 << 20,
    concurrency: Optional[int] = None,
    chunk_size: Optional[int] = None,
    http2: bool = False,
    allow_cleartext: bool = False,
    timeout: float = 300.0,
    download_timeout: Optional[float] = None,
    snapshot: bool = False,
    exit_wait: float = 0.0,
    offload_dir: Optional[str] = None,
    upload_to: Optional[str] = None,
    grant_timeout: float = 30.0,
    request_timeout: float = 10.0,
    retries: int = 2,
    relay_budget: Optional[int] = None,
    store: Optional[str] = None,
    trusted_hops: Optional[Sequence[str]] = None,
) -> None:
    """Makes FLARE's FOBS encode numpy arrays with viacodec, in this
    process, and torch tensors too when torch and FLARE's PyTorch support
    import (FLARE's TensorDecomposer then handles only the tensors viacodec
    does not send: on a GPU, sparse, quantized, or of a dtype it lacks).

    The Host options (``listen``, default ``"127.0.0.1:0"``; ``tls_cert``,
    ``tls_key``, ``tls_ca``, ``tls_client_auth``; ``ref_threshold``,
    default 1 MiB; ``concurrency``, ``chunk_size``, ``http2``;
    ``allow_cleartext``, which lets a Host without TLS listen on or
    advertise an address beyond loopback) are viacodec.Host's, for the
    Host of every cell; ``listen`` may give a port range
    (``"0.0.0.0:9000-9010"``: each Host takes a free port of it).
    ``advertise_host`` is the name or address peers reach this process by
    (default: the address listened on), advertised with the port the
    Host bound. Options no Host could start with are refused here, at
    once.
    ``tls_from_cell=True`` serves mutual TLS with each cell's own FLARE
    credentials (its CA, and its server certificate and key, else its
    client ones): peers then verify the certificate against the address
    the Host advertises. A Host with a certificate (``tls_cert`` or
    ``tls_from_cell``) is known to sources by the certificate's common
    name (FLARE's site name), which mutual TLS proves; without one, by the
    cell's FQCN. ``timeout``
    is a transaction's inactivity timeout in seconds (FLARE's message root
    TTL when that is longer; FLARE's default, 300 s, otherwise);
    ``download_timeout`` bounds a message's downloads (default none);
    ``snapshot=True`` copies the arrays when a message is sent, so that
    the sender may change them before the receivers have downloaded.
    ``exit_wait`` is how long, at interpreter exit, the process waits for
    its open transactions to end before its Hosts close (default 0: a
    process that sends and exits, such as a trainer sending its result,
    sets it so that its receivers can still download).
    ``offload_dir`` (FLARE's own flag is ``enable_tensor_disk_offload``)
    lands every message's downloaded arrays in a safetensors file in that
    directory instead of memory: an aggregator then gets read-only
    numpy.memmap arrays (torch tensors viewing them), and each file goes
    when the last array viewing it does. The directory must exist; put it
    on a disk, not a tmpfs (docs/flare.md, *Offloading to disk*).

    ``request_timeout`` (seconds, default 10) and ``retries`` (default 2)
    bound each download request: one whose source cannot be reached
    fails within about (retries + 1) × request_timeout, 30 s by
    default, inside FLARE's own request timeouts (FLARE's 40 s, say)
    rather than 2.5 minutes, and the sender's transaction ends by its
    inactivity timeout with no receiver confirmed (TIMED_OUT). A sender
    that uploads (below) learns at once: its send fails.

    ``relay_budget`` (bytes) makes this process a caching relay for the
    messages its cells forward (decoded with pass-through, so holding
    LazyRefs): they are re-pointed at one viacodec.Relay of the process
    (listening and serving TLS as its Hosts do), which fetches each piece
    from upstream once, however many receivers the message reaches, and
    holds at most that many bytes in memory; receipts still reach the
    origin under each receiver's name.

    ``store="s3://bucket/prefix"`` makes an object store (S3 or any
    S3-compatible store) hold what this process's Hosts send by
    reference (viacodec.Host's ``store``): each message's arrays are
    uploaded once, its receivers download them from the store under
    presigned URLs, and ask the sending Host only for the manifest and the
    receipt, so the sender's uplink carries one copy however many
    receivers there are; the objects go when the transaction ends.
    Credentials, region and endpoint come from the AWS environment
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL_S3``; ``~/.aws/credentials``).

    ``trusted_hops``, under mutual TLS, are the certificate names (site
    names, with ``tls_from_cell``) of the processes whose relays
    (``relay_budget``) may ask and confirm for the receivers behind them
    (viacodec.Host's ``trusted_hops``): give it to the process that sends,
    so that its receivers behind a relay count under their own names.

    ``listen=None`` is for a process that cannot be reached (a client
    site behind NAT or a firewall, which only dials out): its Hosts listen
    on nothing, and each message it sends by reference is first uploaded
    to a cell that can be reached, which then serves it: ``upload_to``
    (an FQCN, in which ``{job}`` stands for the sender's job id:
    ``"server.{job}"`` is its job's server cell, the choice for a
    trainer whose messages its site's job cell forwards), else the
    message's destination, else the server cell of the process's job. The grant for that upload is asked for over the
    cell connection the process already has (channel ``"viacodec"``,
    topic ``"upload_grant"``, answered within ``grant_timeout``
    seconds); every process that registered with a listen address
    answers it on its cells. The holder keeps the transaction, and the
    sender learns its outcome from there (``transactions(message)``,
    ``exit_wait`` and the download-complete callback work as before).

    Calling it again with the same options does nothing; with others,
    call unregister() first.

    >>> import viacodec.flare
    >>> viacodec.flare.register()
    >>> viacodec.flare.registered()
    True
    >>> viacodec.flare.unregister()
    """
    global _installed
    if relay_budget is not None and (type(relay_budget) is not int or relay_budget <= 0 or listen is None):
        raise InvalidError(f"viacodec.flare: relay_budget {relay_budget!r} is not a positive int, or this process listens on nothing (listen=None)")
    if type(retries) is not int or retries < 0:
        raise InvalidError(f"viacodec.flare: retries {retries!r} is not an int >= 0")
    if type(ref_threshold) is not int or ref_threshold <= 0:
        raise InvalidError(f"viacodec.flare: ref_threshold {ref_threshold!r} is not a positive int")
    if isinstance(exit_wait, bool) or not isinstance(exit_wait, (int, float)) or not 0 <= exit_wait < float("inf"):
        raise InvalidError(f"viacodec.flare: exit_wait {exit_wait!r} is not a number of seconds >= 0")
    for v, what in ((concurrency, "concurrency"), (chunk_size, "chunk_size")):
        if v is not None and (type(v) is not int or v <= 0):
            raise InvalidError(f"viacodec.flare: {what} {v!r} is not a positive int")
    for v, what in ((listen, "listen"), (advertise_host, "advertise_host"), (upload_to, "upload_to"), (store, "store"), (tls_cert, "tls_cert"), (tls_key, "tls_key"), (tls_ca, "tls_ca")):
        if v is not None and (not isinstance(v, str) or not v):
            raise InvalidError(f"viacodec.flare: {what} {v!r} is not a non-empty string")
    if tls_from_cell and (tls_cert or tls_key or tls_ca or tls_client_auth):
        raise InvalidError("viacodec.flare: tls_from_cell takes the cell's credentials: give no tls_* options with it")
    opts = _Options(
        listen,
        advertise_host,
        tls_cert,
        tls_key,
        tls_ca,
        bool(tls_client_auth),
        bool(tls_from_cell),
        ref_threshold,
        concurrency,
        chunk_size,
        bool(http2),
        bool(allow_cleartext),
        _seconds(timeout, "timeout", optional=False),  # type: ignore[arg-type]
        _seconds(download_timeout, "download_timeout", optional=True),
        bool(snapshot),
        float(exit_wait),
        _offload_dir(offload_dir),
        upload_to,
        _seconds(grant_timeout, "grant_timeout", optional=False),  # type: ignore[arg-type]
        _seconds(request_timeout, "request_timeout", optional=False),  # type: ignore[arg-type]
        retries,
        relay_budget,
        store,
        tuple(trusted_hops) if trusted_hops is not None and not isinstance(trusted_hops, (str, bytes)) else trusted_hops,  # type: ignore[arg-type]
    )
    opts.check()
    with _lock:
        if _installed is not None:
            if _installed[0].opts == opts:
                return
            raise InvalidError("viacodec.flare: registered with other options; call unregister() first")
        if DOT in _fobs._dot_handlers:
            raise InvalidError(f"viacodec.flare: Datum Object Type {DOT} is taken by {_fobs._dot_handlers[DOT]!r}")
        # FLARE's own first: their DOTs stay served, for peers that did not register
        numpy_decomposers.register()
        tensor_decomposer = _flare_tensor_decomposer()
        if tensor_decomposer is not None:
            fobs.register(tensor_decomposer)
        adapter = _Adapter(opts, torch=tensor_decomposer is not None)
        arrays = _ArrayDecomposer(adapter, np.ndarray, _fobs._decomposers.get(_ARRAY_TYPE))
        ours = {_ARRAY_TYPE: arrays, _fobs.get_class_name(LazyRef): _Decomposer(adapter, LazyRef, None)}
        if tensor_decomposer is not None:
            import torch

            ours[_TENSOR_TYPE] = _Decomposer(adapter, torch.Tensor, _fobs._decomposers.get(_TENSOR_TYPE), _as_tensor)
            ours[_fobs.get_class_name(_TensorLazyRef)] = _Decomposer(adapter, _TensorLazyRef, None, _as_tensor)
        replaced = {name: _fobs._decomposers.get(name) for name in ours}
        _fobs._decomposers.update(ours)
        _fobs._dot_handlers[DOT] = arrays
        _installed = (adapter, replaced)
    # the cells already running answer grant requests (later ones do
    # once they send or receive a message through FOBS, or get a Host)
    for c in list(CoreCell.ALL_CELLS.values()):
        adapter.grant_uploads(_core(c))


def unregister() -> None:
    """Gives numpy arrays and torch tensors back to FLARE's own decomposers, and closes the
    Hosts (their open transactions end: state deleted). Idempotent."""
    global _installed
    with _lock:
        if _installed is None:
            return
        adapter, replaced = _installed
        _installed = None
        for name, prev in replaced.items():
            if prev is None:
                _fobs._decomposers.pop(name, None)
            else:
                _fobs._decomposers[name] = prev
        if _fobs._dot_handlers.get(DOT) is not None:
            del _fobs._dot_handlers[DOT]
    adapter.close()


@atexit.register
def _drain_at_exit() -> None:
    # Registered after viacodec's own exit hook, so it runs before the
    # Hosts close.
    got = _installed
    if got is not None and got[0].opts.exit_wait > 0:
        got[0].drain(got[0].opts.exit_wait)


def registered() -> bool:
    """Whether register() is in force."""
    return _installed is not None


def host(cell: Any) -> Host:
    """The viacodec Host of a FLARE Cell (or CoreCell) in this process,
    opened on first use and named after the cell's FQCN."""
    got = _installed
    if got is None:
        raise InvalidError("viacodec.flare: not registered")
    return got[0].host(cell)


def transactions(message: Any) -> List[Transaction]:
    """The viacodec Transactions that encoding a FLARE Message opened (one
    per encode that sent arrays by reference; empty if none did)."""
    return list(message.get_prop(_TX_PROP, []) or [])
