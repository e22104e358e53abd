"""A process that blocks in a viacodec call until it is interrupted, for
test_interrupt.py and bench.py: run as

    python interrupted.py CALL

with CALL one of wait, loads, resolve, lazyref, close, upload. It prints
"ready" just before the call that blocks (a transaction nobody downloads,
a download from a source that accepts connections and never answers, the
close of a host whose receiver stopped reading mid-download, or an upload
to a holder that accepts connections and never answers), then
"interrupted" as soon as KeyboardInterrupt reaches it, and then one line
of JSON: what it found afterwards (no value, no leaked handle, the hosts
still usable)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

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
        if call == "close":
            closing = viacodec.Host(name="closing")
            reader = slow_reader(closing)
        if call == "upload":
            uploader = viacodec.Host(name="uploader", listen=None)
            grant = stuck.grant_upload(8 << 20)  # its holder is the frozen address
            handles = _ffi.lib().vc_handle_count()
        blocking = {
            "wait": lambda: stuck_tx.wait(),
            "loads": lambda: agent.loads(msg),
            "resolve": lambda: viacodec.resolve(viacodec.loads(msg, pass_through=True)),
            "lazyref": lambda: viacodec.loads(msg, pass_through=True)["w"].resolve(agent),
            "close": lambda: closing.close(),
            "upload": lambda: uploader.dumps(model, upload=grant),
        }[call]
        print("ready", flush=True)
        try:
            got = blocking()
            print("returned", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        # Afterwards: nothing was returned, nothing leaked, and the hosts
        # still work (a download from a source that answers).
        if call == "close":  # its server closes in the background, within its grace
            reader.kill()
            reader.wait()
            deadline = time.monotonic() + 30
            while _ffi.lib().vc_handle_count() > handles and time.monotonic() < deadline:
                time.sleep(0.05)
        report = {"value": got is not None, "handles": _ffi.lib().vc_handle_count() - handles}
        good, tx = source.dumps(model, receivers=1)
        report["usable"] = bool((agent.loads(good, timeout=60)["w"] == model["w"]).all())
        report["outcome"] = tx.wait(timeout=60).state.value
        report["stuck"] = stuck_tx.status().state.value
    frozen.close()
    print(json.dumps(report), flush=True)


def slow_reader(host: viacodec.Host) -> subprocess.Popen:
    """A receiver in another process downloading 256 MiB from host, stopped
    (SIGSTOP) once the download has begun: the server's responses then
    wait on it, and host.close() waits for them up to its grace."""
    msg, _ = host.dumps({"big": np.ones(1 << 26, np.float32)}, receivers=1)  # 256 MiB
    # Ranges larger than the sockets' buffers, so that a serve is under way
    # when the reader stops.
    reader = "import sys, viacodec; viacodec.Host(chunk_size=1 << 26, concurrency=1).loads(sys.stdin.buffer.read())"
    p = subprocess.Popen([sys.executable, "-c", reader], stdin=subprocess.PIPE)
    assert p.stdin is not None
    p.stdin.write(msg)
    p.stdin.close()
    deadline = time.monotonic() + 60
    while host.stats().bytes_served < 1 << 20:
        if time.monotonic() > deadline or p.poll() is not None:
            raise RuntimeError("the slow reader did not start downloading")
        time.sleep(0.002)
    os.kill(p.pid, signal.SIGSTOP)
    return p


if __name__ == "__main__":
    main(sys.argv[1])
