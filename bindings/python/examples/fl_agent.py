"""A federated-learning agent of the viacodec demo (make demo).

``viacodec demo -python "PYTHON fl_agent.py"`` starts it as a process of its
own, with its name as the last argument, and talks to it in frames on its
standard streams: an 8-byte big-endian length, then a viacodec message
(cmd/viacodec/internal/demo/proto.go lists them). For each task it downloads the model
straight from the server, moves every weight toward its target
(``w + lr * (t - w)``, each step in float32, as the Go agents do) and
answers with its update by reference. Once the server has downloaded the
update, it reports the transaction's outcome. It ends when its input does.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import threading
import time
from typing import Any, BinaryIO, Dict, Optional

import numpy as np

import viacodec


def read_frame(f: BinaryIO) -> Optional[Dict[str, Any]]:
    """The next frame, or None at the end of the input."""
    head = f.read(8)
    if not head:
        return None
    if len(head) != 8:
        raise EOFError("truncated frame header")
    n = struct.unpack(">Q", head)[0]
    data = f.read(n)
    if len(data) != n:
        raise EOFError("truncated frame")
    return viacodec.loads(data)


class FrameWriter:
    """Writes frames from several threads."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._lock = threading.Lock()

    def write(self, frame: Dict[str, Any]) -> None:
        data = viacodec.dumps(frame)
        with self._lock:
            self._f.write(struct.pack(">Q", len(data)))
            self._f.write(data)
            self._f.flush()


def peak_rss() -> int:
    """Peak resident memory in bytes (VmHWM), 0 where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def sha256(a: np.ndarray) -> bytes:
    """SHA-256 of an array's bytes, row-major."""
    return hashlib.sha256(np.ascontiguousarray(a).reshape(-1).view(np.uint8)).digest()


def train_in_place(w: np.ndarray, lr: np.float32, target: np.float32) -> np.ndarray:
    """The training step: w moved by lr toward target, in float32, in
    place (the agent owns the arrays it downloaded)."""
    w += lr * (target - w)
    return w


def main() -> int:
    if sys.stdout.isatty():
        print(
            "fl_agent.py speaks binary frames on its standard streams, not to a terminal: "
            "the demo runs it (make demo, or viacodec demo -python \"PYTHON fl_agent.py\"); "
            "examples/two_processes.py is an example to run by hand",
            file=sys.stderr,
        )
        return 2
    name = sys.argv[1] if len(sys.argv) > 1 else "py-agent"
    out = FrameWriter(sys.stdout.buffer)
    waiters = []

    def report_outcome(round_: int, tx: viacodec.Transaction) -> None:
        o = tx.wait(timeout=120)  # the server has the update: its memory is free
        out.write({
            "op": "outcome", "round": round_, "state": o.state.value,
            "confirmed": o.confirmed, "served": {r.id: r.bytes for r in o.receivers},
        })

    with viacodec.Host(name=name, ref_threshold=1) as host:
        out.write({"op": "hello", "name": name, "kind": "python", "pid": os.getpid(), "rss": peak_rss()})
        while (frame := read_frame(sys.stdin.buffer)) is not None:
            if frame.get("op") != "task":
                raise ValueError(f"unexpected frame {frame.get('op')!r}")
            start = time.perf_counter_ns()
            task = host.loads(frame["msg"], timeout=120)  # downloads from the server
            took = time.perf_counter_ns() - start
            model = task["model"]
            round_ = task["round"]
            report = {
                "round": round_, "held": sum(a.nbytes for a in model.values()), "lazy": 0,
                "downloaded": -1,  # the server counts it
                "ns": took, "sha256": {k: sha256(a) for k, a in model.items()}, "rss": peak_rss(),
            }
            lr, target = np.float32(task["lr"]), np.float32(task["targets"][name])
            # Across sites the server grants an upload: this agent, which it
            # cannot reach, uploads its update instead of serving it.
            grant = (task.get("grants") or {}).get(name)
            update = {k: train_in_place(w, lr, target) for k, w in model.items()}
            del task, model
            msg, tx = host.dumps({"agent": name, "round": round_, "update": update}, receivers=1, timeout=120, upload=grant)
            out.write({"op": "result", "msg": msg, "report": report, "sha256": {k: sha256(u) for k, u in update.items()},
                       "uploaded": grant is not None})
            del update  # tx holds the arrays until the server has them, and no longer
            waiter = threading.Thread(target=report_outcome, args=(round_, tx))
            waiter.start()
            waiters.append(waiter)
    # The server has the updates it waited for (it closes the input after
    # their outcomes); closing the host ended any other.
    for w in waiters:
        w.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
