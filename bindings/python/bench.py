"""Measures dumps and loads against a plain memory copy.

    make python venv && PYTHONPATH=bindings/python .venv/bin/python bindings/python/bench.py [MiB]

For one float32 model of MiB (default 256) in one array, and the same bytes
in 1000 arrays, it prints the best of 5 runs of: dumps (two-step encode into
a new bytes object), the one-call vc_marshal path (malloc'd buffer, then
copied into bytes), loads, and as the baseline numpy copies of the same
bytes into fresh memory (arr.tobytes() and np.frombuffer(msg).copy()).
"""

from __future__ import annotations

import ctypes
import sys
import time

import numpy as np

import viacodec
from viacodec import _cbor, _codec, _ffi


def best(f, runs=5):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def marshal(v):
    lib = _ffi.lib()
    skel, slots = _cbor.encode_skeleton(v, viacodec.default_registry, bytes_slot_min=_codec.BYTES_SLOT_MIN)
    cslots, keep = _codec._slot_array(slots)
    buf = (ctypes.c_char * len(skel)).from_buffer(skel)
    return lib.marshal(ctypes.addressof(buf), len(skel), cslots, len(slots), _ffi.VcEncOptions())


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    n = mib << 20
    one = np.random.default_rng(0).standard_normal(n // 4).astype(np.float32)
    many = {f"layer{i}": t for i, t in enumerate(np.array_split(one, 1000))}
    print(f"{mib} MiB float32, best of 5, GB/s (higher is better)")
    for name, value in (("1 array", {"w": one}), ("1000 arrays", many)):
        msg = viacodec.dumps(value)
        rows = [
            ("memcpy baseline: arr.tobytes()", lambda: one.tobytes()),
            ("dumps (two-step)", lambda: viacodec.dumps(value)),
            ("vc_marshal + copy to bytes", lambda: marshal(value)),
            ("memcpy baseline: frombuffer(msg).copy()", lambda: np.frombuffer(msg, np.uint8).copy()),
            ("loads", lambda: viacodec.loads(msg)),
        ]
        print(f"-- {name}")
        for label, f in rows:
            t = best(f)
            print(f"   {label:42s} {n / t / 1e9:6.2f} GB/s  {t * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
