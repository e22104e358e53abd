"""Transactions: a batch that Host.dumps published, its receivers and
its outcome (core.Transaction, through a transaction handle)."""

from __future__ import annotations

import ctypes
import enum
import threading
import time
import weakref
from typing import Any, List, NamedTuple, Optional, Tuple

from . import _ffi
from ._errors import InvalidError, ViacodecError, ViacodecTimeoutError
from ._interrupt import SLICE, timeout_ns


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


def outcome_of(raw: Tuple[int, bool, str, list]) -> Tuple[Outcome, bool]:
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

    def __init__(self, host: Any, handle: int, keep: Any, receivers: int) -> None:  # host: the Host
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
        timeout_ns(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        lib = _ffi.lib()
        while True:
            # In slices, so that the main thread sees Ctrl-C between them.
            left = SLICE if deadline is None else min(SLICE, max(0.0, deadline - time.monotonic()))
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
                return outcome_of(_ffi.lib().tx_outcome(func, handle, *args))
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
