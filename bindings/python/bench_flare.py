"""viacodec.flare against FLARE's own numpy (or torch) decomposer (`make bench-flare`).

    PYTHONPATH=bindings/python .venv/bin/python bindings/python/bench_flare.py \\
        [--size MIB] [--tensors N] [--runs N] [--torch] [--quick] [--markdown]

The same two-cell setup for both: a process with FLARE's root cell
("server", tcp on 127.0.0.1) sends a float32 model (512 MiB in 16 tensors
by default) in one request to a process with a client cell ("site-1"),
whose handler checks the model and replies. FLARE mode registers FLARE's
numpy decomposers only (ViaDownloaderDecomposer: the receiver pulls the
arrays in chunks through FLARE's download service); viacodec mode calls
viacodec.flare.register() in both processes (the receiver downloads from
the source's viacodec Host). Each mode runs in a fresh pair of processes
(started with "spawn"). With --torch the model is a state_dict of
torch.Tensors (the same bits) and FLARE mode registers FLARE's
TensorDecomposer (safetensors in 2 MiB chunks, same download service),
which viacodec.flare.register() takes over.

Per run: the time from send_request to its reply (encode, transfer,
decode, reply), the CPU seconds of each process over the run, and each
process's peak RSS growth over the run (VmHWM after, less VmRSS before,
with the peak reset first). The source also waits for the transaction's
end (FLARE's DOWNLOAD_COMPLETE_CB, which both modes call). Times are the
best of --runs; CPU and memory are those of the best run.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import multiprocessing
import statistics
import sys
import threading
import time
from typing import Any, Dict, List

import numpy as np

MiB = 1 << 20
CHANNEL = "viacodec_bench"
TIMEOUT = 600.0


def status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def rebase() -> Dict[str, float]:
    """Gives freed heap memory back to the system, resets VmHWM to the
    current RSS (Linux >= 4.0) and returns the RSS and CPU time now."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return {"rss": status("VmRSS"), "cpu": time.process_time()}


def make_model(total: int, tensors: int, torch: bool = False) -> Dict[str, Any]:
    """A float32 model whose bits count up: cheap to build and to check;
    torch tensors over the same memory with torch."""
    n = total // tensors // 4
    model = {f"layer{i:03d}": np.arange(i * n, (i + 1) * n, dtype=np.uint32).view(np.float32) for i in range(tensors)}
    if torch:
        import torch as t

        model = {k: t.from_numpy(a) for k, a in model.items()}
    return model


def check_model(got: Dict[str, Any], total: int, tensors: int, torch: bool = False) -> bool:
    """Whether got is make_model(total, tensors, torch), every 4099th element."""
    n = total // tensors // 4
    if sorted(got) != [f"layer{i:03d}" for i in range(tensors)]:
        return False
    for i in range(tensors):
        a = got[f"layer{i:03d}"]
        if torch:
            if type(a).__module__ != "torch" or str(a.dtype) != "torch.float32":
                return False
            a = a.numpy()
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != (n,):
            return False
        if not np.array_equal(a.view(np.uint32)[::4099], np.arange(i * n, (i + 1) * n, 4099, dtype=np.uint32)):
            return False
    return True


def setup(mode: str, torch: bool) -> None:
    # quiet: FLARE logs every unanswered ping while the cells connect
    logging.basicConfig(level=logging.CRITICAL)
    logging.getLogger().setLevel(logging.CRITICAL)
    from nvflare.app_common.decomposers import numpy_decomposers

    numpy_decomposers.register()
    if torch:
        from nvflare.app_opt.pt.decomposers import TensorDecomposer
        from nvflare.fuel.utils import fobs

        fobs.register(TensorDecomposer)
    if mode == "viacodec":
        import viacodec.flare

        viacodec.flare.register()


def ping(cell: Any, target: str) -> None:
    from nvflare.fuel.f3.message import Message

    for _ in range(600):  # bounded: about a minute
        r = cell.send_request(channel=CHANNEL, topic="ping", target=target, request=Message(payload={}), timeout=0.5)
        if isinstance(r.payload, dict) and r.payload.get("pong"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{target} never answered")


def source(mode: str, total: int, tensors: int, runs: int, torch: bool, outbox: Any) -> None:
    try:
        setup(mode, torch)
        from nvflare.fuel.f3.cellnet.cell import Cell
        from nvflare.fuel.f3.message import Message
        from nvflare.fuel.utils.fobs import FOBSContextKey
        from nvflare.fuel.utils.network_utils import get_open_ports

        url = f"tcp://127.0.0.1:{get_open_ports(1)[0]}"
        cell = Cell("server", url, secure=False, credentials={})
        cell.core_cell.start()
        outbox.put(("url", url))
        ping(cell, "site-1")
        model = make_model(total, tensors, torch)
        results = []
        for r in range(runs):
            done = threading.Event()
            status_of: List[str] = []

            def cb(tx_id: str, st: str, base_objs: list) -> None:
                status_of.append(st)
                done.set()

            # the receiver lets go of the previous model first
            cell.send_request(channel=CHANNEL, topic="rebase", target="site-1", request=Message(payload={}), timeout=30.0)
            base = rebase()
            t0 = time.perf_counter()
            reply = cell.send_request(
                channel=CHANNEL,
                topic="model",
                target="site-1",
                request=Message(payload={"round": r, "model": model}),
                timeout=TIMEOUT,
                fobs_ctx_props={FOBSContextKey.DOWNLOAD_COMPLETE_CB: cb},
            )
            t1 = time.perf_counter()
            got = reply.payload
            if not isinstance(got, dict) or not got.get("ok"):
                raise RuntimeError(f"run {r}: the receiver answered {reply.headers} {got}")
            if not done.wait(TIMEOUT):
                raise RuntimeError(f"run {r}: the transaction did not end")
            t2 = time.perf_counter()
            results.append(
                {
                    "seconds": t1 - t0,
                    "settled": t2 - t0,
                    "tx": status_of[0],
                    "src_cpu": time.process_time() - base["cpu"],
                    "src_peak": status("VmHWM") - base["rss"],
                    "rcv_cpu": got["cpu"],
                    "rcv_peak": got["peak"],
                }
            )
        cell.send_request(channel=CHANNEL, topic="stop", target="site-1", request=Message(payload={}), timeout=5.0)
        cell.core_cell.stop()
        outbox.put(("done", results))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        outbox.put(("error", repr(e)))


def receiver(mode: str, url: str, total: int, tensors: int, torch: bool, outbox: Any) -> None:
    try:
        setup(mode, torch)
        from nvflare.fuel.f3.cellnet.cell import Cell
        from nvflare.fuel.f3.message import Message

        stop = threading.Event()
        base = rebase()

        def on_model(req: Message) -> Message:
            # FLARE decoded (downloaded) the payload before calling us
            ok = check_model(req.payload["model"], total, tensors, torch)
            m = {"ok": ok, "cpu": time.process_time() - base["cpu"], "peak": status("VmHWM") - base["rss"]}
            return Message(payload=m)

        def on_rebase(req: Message) -> Message:
            # between runs: the previous request's decoded model is gone by now
            base.update(rebase())
            return Message(payload={})

        def on_stop(req: Message) -> Message:
            stop.set()
            return Message(payload={})

        cell = Cell("site-1", url, secure=False, credentials={})
        cell.register_request_cb(channel=CHANNEL, topic="ping", cb=lambda req: Message(payload={"pong": True}))
        cell.register_request_cb(channel=CHANNEL, topic="model", cb=on_model)
        cell.register_request_cb(channel=CHANNEL, topic="rebase", cb=on_rebase)
        cell.register_request_cb(channel=CHANNEL, topic="stop", cb=on_stop)
        cell.core_cell.start()
        stop.wait(TIMEOUT * 4)
        time.sleep(0.2)  # the stop reply goes out
        cell.core_cell.stop()
        outbox.put(("done", None))
    except BaseException as e:  # noqa: BLE001
        outbox.put(("error", repr(e)))


def expect(q: Any, kind: str) -> Any:
    got, data = q.get(timeout=TIMEOUT * 4)
    if got != kind:
        raise RuntimeError(f"expected {kind}, got {got}: {data}")
    return data


def run_mode(mode: str, total: int, tensors: int, runs: int, torch: bool) -> List[Dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    src_q, rcv_q = ctx.Queue(), ctx.Queue()
    src = ctx.Process(target=source, args=(mode, total, tensors, runs, torch, src_q), daemon=True)
    src.start()
    url = expect(src_q, "url")
    rcv = ctx.Process(target=receiver, args=(mode, url, total, tensors, torch, rcv_q), daemon=True)
    rcv.start()
    try:
        results = expect(src_q, "done")
        expect(rcv_q, "done")
    finally:
        for p in (src, rcv):
            p.join(30)
            if p.is_alive():  # pragma: no cover - only on failure
                p.kill()
                p.join()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512, help="model size in MiB (default 512)")
    ap.add_argument("--tensors", type=int, default=16, help="tensors in the model (default 16)")
    ap.add_argument("--runs", type=int, default=3, help="runs per mode (default 3)")
    ap.add_argument("--torch", action="store_true", help="a torch state_dict, against FLARE's TensorDecomposer")
    ap.add_argument("--quick", action="store_true", help="64 MiB, 2 runs: a smoke test")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown too")
    args = ap.parse_args()
    if args.quick:
        args.size, args.runs = 64, 2
    total = args.size * MiB
    import nvflare

    import viacodec

    print(
        f"{'torch' if args.torch else 'numpy'} model {args.size} MiB in {args.tensors} tensors, best of {args.runs}; "
        f"nvflare {nvflare.__version__}, viacodec {viacodec.__version__}, Python {sys.version.split()[0]}",
        flush=True,
    )
    best: Dict[str, Dict[str, Any]] = {}
    medians: Dict[str, float] = {}
    for mode in ("flare", "viacodec"):
        t = time.perf_counter()
        results = run_mode(mode, total, args.tensors, args.runs, args.torch)
        best[mode] = min(results, key=lambda x: x["seconds"])
        medians[mode] = statistics.median(x["seconds"] for x in results)
        spread = ", ".join(f"{x['seconds']:.2f}" for x in results)
        print(f"{mode}: runs {spread} s; transactions {[x['tx'] for x in results]} ({time.perf_counter() - t:.0f} s with setup)", flush=True)

    rows = []
    flare_name = "FLARE's TensorDecomposer" if args.torch else "FLARE's ViaDownloaderDecomposer"
    for mode, name in (("flare", flare_name), ("viacodec", "viacodec.flare")):
        b = best[mode]
        rows.append(
            (
                name,
                f"{b['seconds'] * 1e3:,.0f} ms",
                f"{total / b['seconds'] / 1e9:.2f}",
                f"{b['src_cpu']:.2f}",
                f"{b['rcv_cpu']:.2f}",
                f"{b['src_peak'] / MiB:,.1f} MiB",
                f"{b['rcv_peak'] / MiB:,.1f} MiB",
            )
        )
    f, v = best["flare"], best["viacodec"]
    head = ("decomposer", "send to reply", "GB/s", "source CPU s", "receiver CPU s", "source peak RSS +", "receiver peak RSS +")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    src_ratio = v["src_peak"] / f["src_peak"] if f["src_peak"] > 0 else float("nan")
    print(
        f"viacodec: {f['seconds'] / v['seconds']:.1f}x the throughput (target >= 4x; "
        f"{medians['flare'] / medians['viacodec']:.1f}x median to median), "
        f"{(v['src_cpu'] + v['rcv_cpu']) / (f['src_cpu'] + f['rcv_cpu']):.2f}x the CPU, "
        f"source peak RSS growth {src_ratio:.3f}x FLARE's (target <= 0.1x)"
    )
    if args.markdown:
        print()
        print("| " + " | ".join(head) + " |")
        print("| --- |" + " ---: |" * (len(head) - 1))
        for r in rows:
            print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
