"""Blocking calls that answer Ctrl-C at once.

Signals reach Python's main thread only, between bytecodes: a library
call that blocks there would hold Ctrl-C until it returns. So a wait runs
in short slices (SLICE), and a call that may block runs in a worker thread
while the main thread waits for it in slices; an interrupt cancels the
call through the library and joins the worker before it goes on.
"""

from __future__ import annotations

import math
import threading
from typing import Any, List, Optional

from . import _ffi
from ._errors import InvalidError

#: The longest a blocking call keeps the main thread from seeing Ctrl-C.
SLICE = 0.05


def timeout_ns(timeout: Optional[float], what: str = "timeout") -> int:
    """seconds -> nanoseconds; None -> -1 (no limit)."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0 or math.isinf(timeout):
        raise InvalidError(f"viacodec: {what} {timeout!r} is not a number of seconds >= 0 (or None)")
    return int(timeout * 1e9)


def interruptible(lib: _ffi.Library, dh: int, fetch: Any) -> None:
    """Runs fetch, a download on decode handle dh, so that Ctrl-C ends it
    at once: an interrupt cancels the download through the library
    (vc_decode_cancel) and waits for it to return, which it does as soon
    as nothing writes to the arrays any more."""
    in_worker(fetch, lambda: lib.decode_cancel(dh))


def in_worker(call: Any, cancel: Any = None) -> Any:
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
            worker.join(SLICE)
    except BaseException:
        if cancel is not None:
            cancel()
            while worker.is_alive():  # ends at once: the call is cancelled
                try:
                    worker.join(SLICE)
                except KeyboardInterrupt:
                    pass
        raise
    if failed:
        raise failed[0]
    return result[0] if result else None
