"""A federated-learning agent for the viacodec demo (make demo).

It reads one task message from stdin, downloads the model straight from the
source named in it, answers with a digest of every tensor and an update
sent by reference, and waits until the server has downloaded the update
before it exits. Frames on stdin and stdout are an 8-byte big-endian length
and the message.
"""

from __future__ import annotations

import hashlib
import struct
import sys

import numpy as np

import viacodec


def read_frame(f) -> bytes:
    n = struct.unpack(">Q", f.read(8))[0]
    data = f.read(n)
    if len(data) != n:
        raise EOFError("truncated frame")
    return data


def write_frame(f, data: bytes) -> None:
    f.write(struct.pack(">Q", len(data)))
    f.write(data)
    f.flush()


def digest(model: dict) -> bytes:
    """SHA-256 over the tensors' names and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(model):
        h.update(name.encode())
        h.update(np.ascontiguousarray(model[name]).view(np.uint8).tobytes())
    return h.digest()


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "python-agent"
    with viacodec.Host(name=name) as host:
        task = host.loads(read_frame(sys.stdin.buffer), timeout=120)
        model = task["model"]
        update = np.linspace(0, 1, 1 << 18, dtype=np.float32)
        msg, tx = host.dumps({"agent": name, "digest": digest(model), "update": update}, receivers=1)
        write_frame(sys.stdout.buffer, msg)
        outcome = tx.wait(timeout=120)  # the server has the update: now we may go
        print(f"{name}: {len(model)} tensors downloaded; update {outcome.state}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
