"""The Python package's benchmarks, in one run (`make bench-python`).

    PYTHONPATH=bindings/python .venv/bin/python bindings/python/bench.py [--quick] [--markdown]

1. Inline: dumps and loads of a 256 MiB float32 model (16 tensors of
   16 MiB) against numpy.savez/numpy.load to and from memory, pickle
   protocol 5 with out-of-band buffers (and the same joined into one
   bytes object, which is what a transport needs), and memcpy: the same
   bytes copied into fresh memory (what dumps and loads must also do) and
   into memory already touched.
2. By reference between two processes (started with "spawn"): a 1 GiB
   model (8 tensors) downloaded by Host.loads from a Host in another
   process, against a raw TCP socket on loopback sending the same bytes
   into a fresh buffer (sendall / recv_into). The source publishes once
   per download, as a round's server does, and the receiver asks either
   0.5 s later or at once. Since download protocol 2 the source does no
   work between publish and first byte (it checksums each piece as it
   sends it), so the two should agree; before, "at once" also paid for the
   manifest's checksum pass.
3. Host.dumps of a 256 MiB model in 1000 tensors, all by reference
   (ref_threshold=0).
4. Many small values: loads of 50,000 scalar metrics against cbor2
   decoding the same message; loads of one million 0-d arrays (an 8 MB
   message) in a fresh process, with its RSS growth against the values'
   own size (sys.getsizeof of the arrays and the list).
5. Ctrl-C: the time from SIGINT to KeyboardInterrupt in a process blocked
   in Transaction.wait, Host.loads, resolve, LazyRef.resolve and
   Host.close (tests/interrupted.py), each several times.

Times are the best of several runs (median for 3); throughput is bytes
of array data per second. --quick shrinks the sizes for a smoke test.
--markdown prints the table as Markdown too.
"""

from __future__ import annotations

import gc
import io
import json
import multiprocessing
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

import cbor2
import numpy as np

import viacodec

MiB = 1 << 20
GiB = 1 << 30


def best(f: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def model(total: int, tensors: int) -> Dict[str, np.ndarray]:
    n = total // tensors // 4
    rng = np.random.default_rng(0)
    one = rng.standard_normal(n).astype(np.float32)
    return {f"layer{i:04d}": (one + np.float32(i)) for i in range(tensors)}


# ---- 1. inline ----


def inline_rows(total: int, runs: int) -> List[Tuple[str, float, float]]:
    m = model(total, 16)
    flat = np.concatenate([a.ravel() for a in m.values()])
    warm = np.empty_like(flat)
    rows = []

    def row(name: str, t: float, base: float) -> None:
        rows.append((name, t, total / t / 1e9, base / t))

    t_fresh = best(lambda: flat.tobytes(), runs)
    t_warm = best(lambda: np.copyto(warm, flat), runs)
    msg = viacodec.dumps(m)
    assert all(np.array_equal(viacodec.loads(msg)[k], v) for k, v in m.items())
    t_dumps = best(lambda: viacodec.dumps(m), runs)
    t_loads = best(lambda: viacodec.loads(msg), runs)

    def savez() -> bytes:
        b = io.BytesIO()
        np.savez(b, **m)
        return b.getvalue()

    npz = savez()
    t_npsave = best(savez, runs)
    t_npload = best(lambda: (lambda z: {k: z[k] for k in z.files})(np.load(io.BytesIO(npz))), runs)

    def pickle_dumps() -> Tuple[bytes, list]:
        bufs: list = []
        return pickle.dumps(m, protocol=5, buffer_callback=bufs.append), bufs

    p, bufs = pickle_dumps()
    t_pdumps = best(pickle_dumps, runs)
    t_ploads = best(lambda: pickle.loads(p, buffers=bufs), runs)

    def pickle_joined() -> bytes:
        p, bufs = pickle_dumps()
        return b"".join([p] + [b.raw() for b in bufs])

    t_pjoin = best(pickle_joined, runs)

    for name, t in [
        ("memcpy into fresh memory (arr.tobytes)", t_fresh),
        ("memcpy into touched memory (np.copyto)", t_warm),
        ("viacodec.dumps", t_dumps),
        ("viacodec.loads", t_loads),
        ("numpy.savez to BytesIO", t_npsave),
        ("numpy.load from BytesIO (all arrays)", t_npload),
        ("pickle 5 dumps, out-of-band buffers (no copy)", t_pdumps),
        ("pickle 5 loads, out-of-band buffers (no copy)", t_ploads),
        ("pickle 5 out-of-band, joined into one bytes", t_pjoin),
    ]:
        row(name, t, t_fresh)
    return rows


# ---- 2. by reference between processes ----


def _raw_sender(port_q: Any, total: int) -> None:
    data = np.arange(total // 4, dtype=np.uint32)
    srv = socket.create_server(("127.0.0.1", 0))
    port_q.put(srv.getsockname()[1])
    while True:
        conn, _ = srv.accept()
        with conn:
            if conn.recv(1) != b"s":
                return
            conn.sendall(memoryview(data).cast("B"))


def _raw_receive(port: int, total: int) -> float:
    dst = np.empty(total, np.uint8)  # fresh, as a decode's arrays are
    mv = memoryview(dst)
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"s")
        got = 0
        while got < total:
            n = c.recv_into(mv[got:], min(total - got, 16 * MiB))
            if n == 0:
                raise RuntimeError("raw sender closed early")
            got += n
    return time.perf_counter() - t


def _host_source(q: Any, asks: Any, total: int, tensors: int) -> None:
    """Publishes the model once per ask, as a round's server does, and
    hands the message over after the pause the ask gives; None ends it."""
    n = total // tensors // 4
    m = {f"layer{i}": np.arange(i * n, (i + 1) * n, dtype=np.uint32).view(np.float32) for i in range(tensors)}
    with viacodec.Host(name="bench-source") as h:
        while (pause := asks.get()) is not None:
            msg, tx = h.dumps({"model": m}, receivers=1)
            time.sleep(pause)
            q.put(msg)
            tx.wait(600)


def by_ref(total: int, tensors: int, runs: int, ctx: Any, pauses: Tuple[float, ...]) -> List[List[float]]:
    """Download times, raw socket first: a raw TCP socket, then Host.loads
    of a model published in another process for each pause between the
    source's publish and the receiver's first request. They take turns,
    runs times each, so that each ratio compares runs of the same minutes
    on a noisy machine."""
    rq = ctx.Queue()
    raw = ctx.Process(target=_raw_sender, args=(rq, total), daemon=True)
    raw.start()
    port = rq.get(timeout=120)
    q, asks = ctx.Queue(), ctx.Queue()
    src = ctx.Process(target=_host_source, args=(q, asks, total, tensors), daemon=True)
    src.start()
    times: List[List[float]] = [[] for _ in range(1 + len(pauses))]
    n = total // tensors // 4
    with viacodec.Host(name="bench-agent") as agent:
        for _ in range(runs):
            times[0].append(_raw_receive(port, total))
            for i, pause in enumerate(pauses, 1):
                asks.put(pause)
                msg = q.get(timeout=300)
                t = time.perf_counter()
                v = agent.loads(msg, timeout=600)
                times[i].append(time.perf_counter() - t)
                last = v["model"][f"layer{tensors - 1}"].view(np.uint32)
                assert last[0] == (tensors - 1) * n and last[-1] == tensors * n - 1
                del v, last
    asks.put(None)
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"q")
    src.join(60)
    raw.join(30)
    return times


# ---- 3. by-ref dumps of 1000 tensors ----


def dumps_1000(total: int, runs: int) -> Tuple[float, float, int]:
    m = model(total, 1000)
    with viacodec.Host(name="bench", ref_threshold=0) as h:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            msg, tx = h.dumps({"model": m}, receivers=1)
            times.append(time.perf_counter() - t)
            tx.abort()
        return statistics.median(times), min(times), len(msg)


# ---- 4. many small values ----


def metrics(runs: int) -> Tuple[float, float, int]:
    """loads of 50,000 scalar metrics, and cbor2.loads of the same message
    (best of runs each, alternating)."""
    value = {f"metric/{i:05d}": float(i) * 0.25 if i % 2 else i for i in range(50_000)}
    msg = viacodec.dumps(value)
    assert viacodec.loads(msg) == value and cbor2.loads(msg).value[1] == value
    ours, theirs = [], []
    for _ in range(runs):
        t = time.perf_counter()
        viacodec.loads(msg)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        cbor2.loads(msg)
        theirs.append(time.perf_counter() - t)
    return min(ours), min(theirs), len(msg)


def _rss() -> Tuple[int, int]:
    """(VmRSS, VmHWM) of this process, in bytes."""
    got = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                got[k] = int(v.split()[0]) * 1024
    return got["VmRSS"], got["VmHWM"]


def _zero_d_child(q: Any, n: int) -> None:
    """In a fresh process: loads of n 0-d arrays, its time, the RSS it
    added (after, and at its peak) and the values' own size."""
    msg = viacodec.dumps([np.array(i % 256, np.uint8) for i in range(n)])
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before, _ = _rss()
    t = time.perf_counter()
    v = viacodec.loads(msg)
    took = time.perf_counter() - t
    after, peak = _rss()
    own = sys.getsizeof(v) + sum(sys.getsizeof(a) for a in v)
    assert len(v) == n and v[n - 1] == (n - 1) % 256 and v[7].shape == ()
    q.put((took, after - before, peak - before, own, len(msg)))


def zero_d(n: int, ctx: Any) -> Tuple[float, int, int, int, int]:
    q = ctx.Queue()
    p = ctx.Process(target=_zero_d_child, args=(q, n))
    p.start()
    got = q.get(timeout=600)
    p.join(60)
    return got


# ---- 5. Ctrl-C ----


def ctrl_c(runs: int) -> Dict[str, List[float]]:
    """Seconds from SIGINT to KeyboardInterrupt, per blocking call."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests", "interrupted.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.abspath(viacodec.__file__)) + "/..", os.environ.get("PYTHONPATH")])))
    out: Dict[str, List[float]] = {}
    for call in ("wait", "loads", "resolve", "lazyref", "close"):
        for _ in range(runs):
            p = subprocess.Popen([sys.executable, script, call], stdout=subprocess.PIPE, text=True, env=env)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            time.sleep(0.3)
            t = time.perf_counter()
            p.send_signal(signal.SIGINT)
            line = p.stdout.readline().strip()
            took = time.perf_counter() - t
            assert line == "interrupted", line
            report = json.loads(p.stdout.readline())
            assert p.wait(60) == 0 and report["usable"] and not report["value"] and report["handles"] == 0
            out.setdefault(call, []).append(took)
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    markdown = "--markdown" in sys.argv
    inline_total = 32 * MiB if quick else 256 * MiB
    ref_total = 64 * MiB if quick else GiB
    runs = 3 if quick else 5
    ctx = multiprocessing.get_context("spawn")
    cores = os.cpu_count()
    print(f"viacodec {viacodec.__version__} (library {viacodec.library_version()}), numpy {np.__version__}, "
          f"Python {sys.version.split()[0]}, {cores} cores", flush=True)

    rows = inline_rows(inline_total, runs)
    t_warm = rows[1][1]
    t_dumps = next(r for r in rows if r[0] == "viacodec.dumps")[1]
    t_loads = next(r for r in rows if r[0] == "viacodec.loads")[1]
    t_mem = rows[0][1]
    print(f"\n1. Inline, {inline_total // MiB} MiB float32 model (16 tensors), best of {runs}; ratio = memcpy-into-fresh time / time")
    print(f"   {'':52s} {'ms':>8s} {'GB/s':>7s} {'x memcpy':>9s}")
    for name, t, gbs, ratio in rows:
        if "no copy" in name:  # views, not a copy: a throughput means nothing
            print(f"   {name:52s} {t * 1e3:8.3f} {'-':>7s} {'-':>9s}")
        else:
            print(f"   {name:52s} {t * 1e3:8.1f} {gbs:7.2f} {ratio:9.2f}")
    print(f"   (dumps is {t_warm / t_dumps:.2f}x and loads {t_warm / t_loads:.2f}x a memcpy into touched memory)")

    pause = 0.5  # a receiver that comes a little after the publish
    raws, at_once, later = by_ref(ref_total, 8, runs + 2, ctx, (0.0, pause))
    raw, ref, ref_now = min(raws), min(later), min(at_once)
    print(f"\n2. By reference between two processes, {ref_total // MiB} MiB (8 tensors), one publish per download, "
          f"best of {runs + 2}, taking turns")
    print(f"   raw TCP socket on loopback into fresh memory     {raw * 1e3:8.1f} ms {ref_total / raw / 1e9:6.2f} GB/s"
          f"  (runs: {', '.join(f'{x:.2f}' for x in raws)} s)")
    print(f"   Host.loads, {pause} s after the publish             {ref * 1e3:8.1f} ms {ref_total / ref / 1e9:6.2f} GB/s"
          f"  {raw / ref:.2f} x raw socket  (runs: {', '.join(f'{x:.2f}' for x in later)} s)")
    print(f"   Host.loads at once after the publish             {ref_now * 1e3:8.1f} ms {ref_total / ref_now / 1e9:6.2f} GB/s"
          f"  {raw / ref_now:.2f} x raw socket  (runs: {', '.join(f'{x:.2f}' for x in at_once)} s)")

    med, fastest, size = dumps_1000(inline_total, 21 if not quick else 5)
    print(f"\n3. Host.dumps of a {inline_total // MiB} MiB model in 1000 tensors, all by reference: "
          f"median {med * 1e3:.2f} ms, best {fastest * 1e3:.2f} ms, message {size} bytes")

    t_metrics, t_cbor2, metrics_size = metrics(15 if not quick else 5)
    n0 = 1_000_000 if not quick else 100_000
    t_zero, grew, peak, own, zero_size = zero_d(n0, ctx)
    print(f"\n4. Many small values, best of {15 if not quick else 5}")
    print(f"   loads of 50,000 scalar metrics ({metrics_size} bytes)        {t_metrics * 1e3:8.1f} ms  "
          f"{t_metrics / t_cbor2:.2f}x cbor2.loads of the same message ({t_cbor2 * 1e3:.1f} ms)")
    print(f"   loads of {n0:,} 0-d arrays ({zero_size} bytes), fresh process  {t_zero * 1e3:8.0f} ms  RSS +{grew / MiB:.0f} MiB "
          f"(peak +{peak / MiB:.0f} MiB) for values of {own / MiB:.0f} MiB: {max(grew, peak) / own:.2f}x")

    latency = ctrl_c(5 if not quick else 2)
    worst = max(max(v) for v in latency.values())
    print("\n5. Ctrl-C: SIGINT to KeyboardInterrupt, blocked in", ", ".join(
        f"{k} median {statistics.median(v) * 1e3:.1f} ms (max {max(v) * 1e3:.1f})" for k, v in latency.items()))

    verdicts = [
        ("inline dumps >= 0.7x memcpy", t_mem / t_dumps, 0.7, f"{t_mem / t_dumps:.2f}x"),
        ("inline loads against memcpy (no target; for reference)", t_mem / t_loads, None, f"{t_mem / t_loads:.2f}x"),
        ("by-ref download >= 0.9x raw socket", raw / ref, 0.9, f"{raw / ref:.2f}x"),
        ("the same, asked at once after the dumps >= 0.95x", raw / ref_now, 0.95, f"{raw / ref_now:.2f}x"),
        ("by-ref dumps of 1000 tensors <= 2 ms (median)", 2e-3 / med, 1.0, f"{med * 1e3:.2f} ms"),
        ("loads of 50,000 metrics <= 30 ms", 30e-3 / t_metrics, 1.0, f"{t_metrics * 1e3:.1f} ms"),
        ("loads of 50,000 metrics <= 2x cbor2", 2 * t_cbor2 / t_metrics, 1.0, f"{t_metrics / t_cbor2:.2f}x"),
        (f"loads of {n0:,} 0-d arrays <= 3 s", 3.0 / t_zero, 1.0, f"{t_zero:.2f} s"),
        ("its RSS growth (peak) <= 3x the values' own size", 3 * own / max(grew, peak), 1.0, f"{max(grew, peak) / own:.2f}x"),
        ("Ctrl-C within 0.2 s (worst of all runs)", 0.2 / worst, 1.0, f"{worst * 1e3:.1f} ms"),
    ]
    print("\nTargets:")
    for name, value, target, shown in verdicts:
        verdict = "-" if target is None else "met" if value >= target else "NOT met"
        print(f"   {name:58s} {shown:>10s}  {verdict}")

    if markdown:
        print("\n| benchmark | time | GB/s | ratio |\n| --- | ---: | ---: | ---: |")
        for name, t, gbs, ratio in rows:
            if "no copy" in name:
                print(f"| {name} | {t * 1e3:.3f} ms | - | - |")
            else:
                print(f"| {name} | {t * 1e3:.1f} ms | {gbs:.2f} | {ratio:.2f}x memcpy |")
        print(f"| raw TCP socket, {ref_total // MiB} MiB | {raw * 1e3:.1f} ms | {ref_total / raw / 1e9:.2f} | 1.00x |")
        print(f"| Host.loads by reference, {ref_total // MiB} MiB, {pause} s after the publish | {ref * 1e3:.1f} ms | {ref_total / ref / 1e9:.2f} | {raw / ref:.2f}x raw socket |")
        print(f"| Host.loads by reference, {ref_total // MiB} MiB, at once | {ref_now * 1e3:.1f} ms | {ref_total / ref_now / 1e9:.2f} | {raw / ref_now:.2f}x raw socket |")
        print(f"| Host.dumps, 1000 tensors by reference | {med * 1e3:.2f} ms (median) | | |")
        print(f"| loads, 50,000 scalar metrics | {t_metrics * 1e3:.1f} ms | | {t_metrics / t_cbor2:.2f}x cbor2.loads ({t_cbor2 * 1e3:.1f} ms) |")
        print(f"| loads, {n0:,} 0-d arrays (fresh process) | {t_zero * 1e3:.0f} ms | | RSS +{max(grew, peak) / MiB:.0f} MiB (peak) for {own / MiB:.0f} MiB of values: {max(grew, peak) / own:.2f}x |")
        print(f"| Ctrl-C, worst of {sum(map(len, latency.values()))} runs | {worst * 1e3:.1f} ms | | |")


if __name__ == "__main__":
    main()
