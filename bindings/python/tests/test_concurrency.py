"""Threads calling the codec at once (ctypes releases the GIL), and
processes started with "spawn" (a forked child must not use the library)."""

from __future__ import annotations

import multiprocessing
import threading

import ml_dtypes
import numpy as np

import viacodec
from viacodec import _ffi

from conftest import same

THREADS = 8
ITERATIONS = 50


def model(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "round": seed,
        "w": rng.standard_normal((64, 33)).astype(np.float32),
        "f": np.asfortranarray(rng.integers(-100, 100, size=(5, 7), dtype=np.int64)),
        "b": rng.standard_normal(17).astype(ml_dtypes.bfloat16),
        "blob": rng.bytes(70_000),
        "meta": viacodec.Map([(seed, "seed"), (b"k", [np.float16(seed), np.float32(-0.0), float("nan")])]),
        "obj": viacodec.Object("t.O", {"x": rng.integers(0, 2, 9).astype(bool)}),
    }


def test_threads_dump_and_load_at_once():
    values = [model(i) for i in range(THREADS)]
    expected = [viacodec.dumps(v) for v in values]
    errors = []
    start = threading.Barrier(THREADS)

    def work(i: int) -> None:
        try:
            start.wait()
            for k in range(ITERATIONS):
                msg = viacodec.dumps(values[i])
                if msg != expected[i]:
                    raise AssertionError(f"thread {i} iteration {k}: message differs")
                back = viacodec.loads(expected[(i + k) % THREADS])
                if not same(back, viacodec.loads(expected[(i + k) % THREADS])) or viacodec.dumps(back) != expected[(i + k) % THREADS]:
                    raise AssertionError(f"thread {i} iteration {k}: decoded value differs")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert _ffi.lib().vc_handle_count() == 0


def test_threads_misusing_handles():
    """Threads releasing and using made-up and real handles at once get
    errors, never a crash."""
    lib = _ffi.lib()
    errors = []

    def work(i: int) -> None:
        try:
            for k in range(200):
                try:
                    lib.release(1_000_000 + i * 1000 + k)
                except viacodec.InvalidError:
                    pass
                viacodec.loads(viacodec.dumps([i, k]))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def _child(seed: int) -> bytes:
    return viacodec.dumps(viacodec.loads(viacodec.dumps(model(seed))))


def test_spawned_processes():
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        got = pool.map(_child, range(4))
    assert got == [viacodec.dumps(model(i)) for i in range(4)]


def test_resolve_while_the_host_closes():
    """resolve in one thread and Host.close in another, 200 times: each
    resolve returns the arrays or raises (the host closed), and nothing
    hangs. The library once took the host's lock twice in one call, and a
    close arriving between the two waited forever."""
    w = np.arange(1 << 16, dtype=np.float32)
    with viacodec.Host(name="source") as source:
        msg, tx = source.dumps({"w": w}, receivers=0, ref_threshold=1)
        relayed = viacodec.loads(msg, pass_through=True)
        outcomes = {"resolved": 0, "closed": 0}
        for i in range(200):
            agent = viacodec.Host(name=f"agent-{i}")
            result: list = []

            def resolve() -> None:
                try:
                    got = viacodec.resolve(dict(relayed), host=agent, timeout=20)
                    result.append("resolved" if np.array_equal(got["w"], w) else AssertionError("wrong bytes"))
                except (viacodec.InvalidError, viacodec.AbortedError) as e:
                    result.append("closed" if "clos" in str(e) or "released" in str(e) or isinstance(e, viacodec.AbortedError) else e)
                except BaseException as e:  # noqa: BLE001 - reported below
                    result.append(e)

            t = threading.Thread(target=resolve)
            c = threading.Thread(target=agent.close)
            t.start()
            c.start()
            t.join(30)
            c.join(30)
            assert not t.is_alive() and not c.is_alive(), f"iteration {i}: resolve or close hangs"
            assert result and isinstance(result[0], str), f"iteration {i}: {result}"
            outcomes[result[0]] += 1
        tx.abort()
    assert outcomes["resolved"] + outcomes["closed"] == 200
    assert _ffi.lib().vc_handle_count() == 0
