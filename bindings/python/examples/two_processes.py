"""Two processes, arrays by reference: run ``python two_processes.py``.

The server process starts an agent process (this file again, with the
argument ``agent``) and sends it a task whose model goes by reference: the
message itself is a few hundred bytes, and the agent's Host downloads the
arrays straight from the server's Host while it decodes. The agent answers
with its update, by reference too; the server downloads it, and each side
waits for its transaction's outcome, which says the other side has the
arrays.

The messages travel over the agent's standard input and output, each as an
8-byte big-endian length and the message: any transport that moves bytes
will do (FLARE's cells, a queue, a socket). Both Hosts listen on loopback
here; across machines, give each Host ``listen="0.0.0.0:PORT"`` (or a port
range), ``advertise="its.host.name"`` and TLS (bindings/python/README.md).
"""

from __future__ import annotations

import struct
import subprocess
import sys
from typing import BinaryIO

import numpy as np

import viacodec


def send(f: BinaryIO, msg: bytes) -> None:
    f.write(struct.pack(">Q", len(msg)) + msg)
    f.flush()


def receive(f: BinaryIO) -> bytes:
    head = f.read(8)
    if len(head) != 8:
        raise EOFError("the other process ended")
    n = struct.unpack(">Q", head)[0]
    msg = f.read(n)
    if len(msg) != n:
        raise EOFError("the other process ended mid-message")
    return msg


def agent() -> None:
    """The agent: reads a task on stdin, answers on stdout."""
    with viacodec.Host(name="agent-1") as host:
        task = host.loads(receive(sys.stdin.buffer), timeout=60)  # downloads the model
        lr = np.float32(task["lr"])
        update = {name: w + lr * (np.float32(1) - w) for name, w in task["model"].items()}
        reply, tx = host.dumps({"agent": host.name, "round": task["round"], "update": update}, receivers=1)
        send(sys.stdout.buffer, reply)
        outcome = tx.wait(timeout=60)  # the server has downloaded the update
        print(f"agent: round {task['round']}, update {outcome.state} by {outcome.confirmed}", file=sys.stderr)


def server() -> None:
    """The server: starts the agent, sends it a task, receives its update."""
    model = {"w": np.zeros((1024, 1024), np.float32), "b": np.full(1 << 18, 3, np.float32)}
    proc = subprocess.Popen([sys.executable, __file__, "agent"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with proc, viacodec.Host(name="server") as host:
        task, tx = host.dumps({"round": 1, "lr": 0.5, "model": model}, receivers=1)
        print(f"server: sends a task of {len(task)} bytes for a model of {sum(a.nbytes for a in model.values())} bytes")
        send(proc.stdin, task)
        proc.stdin.close()
        result = host.loads(receive(proc.stdout), timeout=60)  # downloads the update from the agent
        outcome = tx.wait(timeout=60)
        w, b = result["update"]["w"], result["update"]["b"]
        print(f"server: task {outcome.state} by {outcome.confirmed}; update from {result['agent']}: w = {w[0, 0]}, b = {b[0]}")
    if proc.returncode != 0:
        raise SystemExit(f"the agent failed with status {proc.returncode}")


if __name__ == "__main__":
    if sys.argv[1:] == ["agent"]:
        agent()
    else:
        server()
