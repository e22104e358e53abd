"""A process that blocks in a viacodec call until it is interrupted, for
test_interrupt.py and bench.py: run as

    python interrupted.py CALL

with CALL one of wait, loads, resolve, lazyref. It prints "ready" just
before the call that blocks (a transaction nobody downloads, or a
download from a source that accepts connections and never answers), then
"interrupted" as soon as KeyboardInterrupt reaches it, and then one line
of JSON: what it found afterwards (no value, no leaked handle, the Host
still usable)."""

from __future__ import annotations

import json
import socket
import sys

import numpy as np

import viacodec
from viacodec import _ffi


def main(call: str) -> None:
    frozen = socket.create_server(("127.0.0.1", 0), backlog=64)  # never accepts: the kernel does, nobody answers
    model = {"w": np.arange(1 << 18, dtype=np.float32)}
    with viacodec.Host(name="frozen", advertise=f"http://127.0.0.1:{frozen.getsockname()[1]}") as stuck, \
            viacodec.Host(name="source") as source, viacodec.Host(name="agent") as agent:
        msg, stuck_tx = stuck.dumps(model, receivers=1)
        handles = _ffi.lib().vc_handle_count()
        got = None
        blocking = {
            "wait": lambda: stuck_tx.wait(),
            "loads": lambda: agent.loads(msg),
            "resolve": lambda: viacodec.resolve(viacodec.loads(msg, pass_through=True)),
            "lazyref": lambda: viacodec.loads(msg, pass_through=True)["w"].resolve(agent),
        }[call]
        print("ready", flush=True)
        try:
            got = blocking()
            print("returned", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        # Afterwards: nothing was returned, nothing leaked, and the hosts
        # still work (a download from a source that answers).
        report = {"value": got is not None, "handles": _ffi.lib().vc_handle_count() - handles}
        good, tx = source.dumps(model, receivers=1)
        report["usable"] = bool((agent.loads(good, timeout=60)["w"] == model["w"]).all())
        report["outcome"] = tx.wait(timeout=60).state.value
        report["stuck"] = stuck_tx.status().state.value
    frozen.close()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
