"""Worker processes of test_processes.py and bench_byref.py, started with
the "spawn" method (a forked child must not use the library). Each talks to
the parent through queues and reports plain data."""

from __future__ import annotations

import os
import time
from typing import Any, Dict

import numpy as np

MiB = 1 << 20


def status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak() -> None:
    """Resets VmHWM to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def make_model(total: int, tensors: int) -> Dict[str, np.ndarray]:
    """A deterministic float32 model of about total bytes (each tensor's
    bits count up from its own start), cheap to build and to check."""
    n = total // tensors // 4
    return {f"layer{i:03d}": np.arange(i * n, (i + 1) * n, dtype=np.uint32).view(np.float32) for i in range(tensors)}


def check_model(got: Dict[str, Any], total: int, tensors: int, stride: int = 1) -> bool:
    """Whether got is make_model(total, tensors), every stride-th element."""
    n = total // tensors // 4
    if sorted(got) != [f"layer{i:03d}" for i in range(tensors)]:
        return False
    for i in range(tensors):
        a = got[f"layer{i:03d}"]
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != (n,):
            return False
        want = np.arange(i * n, (i + 1) * n, stride, dtype=np.uint32)
        if not np.array_equal(a.view(np.uint32)[::stride], want):
            return False
    return True


def outcome_data(out: Any) -> Dict[str, Any]:
    return {"state": out.state.value, "receivers": [(r.id, r.state.value, r.bytes) for r in out.receivers]}


def source(inbox: Any, outbox: Any, total: int, tensors: int, messages: int = 1, receivers: int = 1) -> None:
    """Publishes the model by reference `messages` times, sends each
    message, waits for every transaction and reports the outcomes."""
    import viacodec

    try:
        model = make_model(total, tensors)
        with viacodec.Host(name="source") as host:
            txs = []
            for k in range(messages):
                msg, tx = host.dumps({"round": k, "model": model}, receivers=receivers)
                txs.append(tx)
                outbox.put(("msg", msg))
            outs = [outcome_data(tx.wait(timeout=300)) for tx in txs]
            outbox.put(("done", {"outcomes": outs, "bytes_served": host.stats().bytes_served}))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        outbox.put(("error", repr(e)))


def relay(inbox: Any, outbox: Any) -> None:
    """Forwards one message in pass-through, adding a field and an array
    of its own (by reference), and reports its memory and what it held."""
    import viacodec

    try:
        with viacodec.Host(name="relay") as host:
            msg = inbox.get(timeout=300)
            reset_peak()
            before = status("VmRSS")
            value = host.loads(msg, pass_through=True)
            kinds = sorted({type(v).__name__ for v in value["model"].values()})
            value["relay"] = "relay-1"
            value["relay_update"] = np.full(MiB // 4, 3.0, np.float32)
            fwd, tx = host.dumps(value, receivers=1)
            grew = status("VmHWM") - before
            outbox.put(("fwd", fwd))
            out = outcome_data(tx.wait(timeout=300))
            outbox.put(("done", {"grew": grew, "kinds": kinds, "message": len(msg), "forwarded": len(fwd),
                                 "bytes_served": host.stats().bytes_served, "outcome": out}))
    except BaseException as e:  # noqa: BLE001
        outbox.put(("error", repr(e)))


def agent(inbox: Any, outbox: Any, total: int, tensors: int, messages: int = 1, drop: bool = True) -> None:
    """Decodes `messages` messages in a row, each downloading the model,
    dropping each before the next (drop), and reports its memory: the RSS
    before, after each decode, and the peak."""
    import viacodec

    try:
        with viacodec.Host(name="agent") as host:
            msgs = [inbox.get(timeout=300) for _ in range(messages)]
            reset_peak()
            base = status("VmRSS")
            rss, ok, seconds = [], [], []
            value = None
            for msg in msgs:
                if drop:
                    value = None
                t = time.perf_counter()
                value = host.loads(msg, timeout=300)
                seconds.append(time.perf_counter() - t)
                rss.append(status("VmRSS"))
                ok.append(check_model(value["model"], total, tensors, stride=1 if total <= 256 * MiB else 4099))
                extra = value.get("relay_update")
                if extra is not None:
                    ok.append(bool((extra == 3.0).all()) and value["relay"] == "relay-1")
            outbox.put(("done", {"base": base, "rss": rss, "peak": status("VmHWM"), "ok": ok, "seconds": seconds, "pid": os.getpid()}))
    except BaseException as e:  # noqa: BLE001
        outbox.put(("error", repr(e)))
