"""Host(store="s3://BUCKET/PREFIX") and viacodec.flare.register(store=...)
against a real S3 engine: SeaweedFS on loopback (the weed fixture). The
origin uploads a batch once; its receivers download it from the store
under a presigned URL and ask the origin only for the manifest and the
receipt, so the origin serves no item byte. Each case runs in a process
of its own started with weed's AWS environment (one case sets it after
the library loaded)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from typing import Any, Dict

import numpy as np
import pytest

import viacodec
from conftest import same, store_env

KiB, MiB = 1 << 10, 1 << 20
TIMEOUT = 60.0
spawn = multiprocessing.get_context("spawn")


def _model(seed: int, n: int = 4, size: int = 1 * MiB) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"layer{i}.weight": rng.standard_normal(size // 4).astype(np.float32).reshape(-1, 64) for i in range(n)}


def _digest(a: np.ndarray) -> str:
    return f"{a.dtype.str}{a.shape}{hashlib.sha256(a.tobytes(order='A')).hexdigest()}"


def _run(target: Any, weed: dict, monkeypatch: pytest.MonkeyPatch, *args: Any) -> Any:
    """target(out, *args) in a spawned process with weed's AWS environment; its result."""
    for k, v in store_env(weed).items():
        monkeypatch.setenv(k, v)
    return _spawn(target, *args)


def _spawn(target: Any, *args: Any) -> Any:
    """target(out, *args) in a spawned process; its result."""
    q = spawn.Queue()
    p = spawn.Process(target=target, args=(q, *args))
    p.start()
    try:
        kind, got = q.get(timeout=180)
    finally:
        p.join(timeout=60)
    assert kind == "ok", got
    return got


# ---- Host ----


def _host_round(out: Any, store: str) -> None:
    try:
        model = _model(1)
        with viacodec.Host(store=store, name="origin") as origin, viacodec.Host(name="agent") as agent:
            msg, tx = origin.dumps({"round": 1, "model": model}, receivers=1)
            got = agent.loads(msg)
            outcome = tx.wait(timeout=TIMEOUT)
            out.put(
                (
                    "ok",
                    {
                        "object": b"object+" + os.environ["AWS_ENDPOINT_URL_S3"].encode() in msg,
                        "bit_exact": same(got, {"round": 1, "model": model}),
                        "state": outcome.state.value,
                        "confirmed": outcome.confirmed,
                        "origin_item_bytes": origin.stats().bytes_served,
                        "origin_token_leak": b"viacodec-test-secret" in msg,
                    },
                )
            )
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(e)))


def test_host_store_round_trip(weed, monkeypatch):
    """dumps uploads to the store and points the message there; loads on
    another Host downloads bit for bit from the store; the origin serves
    0 item bytes (manifest and receipt only) and its transaction
    completes with the receiver's name; no secret is in the message."""
    got = _run(_host_round, weed, monkeypatch, f"s3://{weed['bucket']}/py-host")
    assert got == {
        "object": True,
        "bit_exact": True,
        "state": "completed",
        "confirmed": ["agent"],
        "origin_item_bytes": 0,
        "origin_token_leak": False,
    }


def _env_after_load(out: Any, store: str, env: Dict[str, str]) -> None:
    viacodec.library_version()  # the library is loaded, its Go environment copied
    os.environ.update(env)
    _host_round(out, store)


def test_host_store_env_set_after_load(weed):
    """The AWS environment set in os.environ after the library loaded
    is what a Host(store=...) uses (the library reads the process's
    environment when it opens the store, not its copy from load time)."""
    got = _spawn(_env_after_load, f"s3://{weed['bucket']}/py-env", store_env(weed))
    assert got["bit_exact"] and got["object"] and got["origin_item_bytes"] == 0


def test_host_store_bad_options():
    """A store that is not s3://BUCKET/PREFIX, or on a Host that listens on
    nothing (its receivers could not reach it for the receipt), is refused
    with a clear error; no host is left open (no_leaked_handles)."""
    with pytest.raises(viacodec.InvalidError, match=r"^viacodec: host: .* is not s3://BUCKET/PREFIX"):
        viacodec.Host(store="http://127.0.0.1:1/bucket")
    with pytest.raises(viacodec.InvalidError, match="listens on nothing has no store"):
        viacodec.Host(listen=None, store="s3://bucket/prefix")
    with pytest.raises(viacodec.InvalidError, match="store"):
        viacodec.Host(store="")


# ---- FLARE ----


def _flare_send(out: Any, store: str) -> None:
    try:
        import viacodec.flare as vf
        from nvflare.fuel.f3.cellnet.cell import Cell
        from nvflare.fuel.f3.message import Message
        from nvflare.fuel.utils.network_utils import get_open_ports

        vf.register(ref_threshold=64 * KiB, store=store)
        url = f"tcp://127.0.0.1:{get_open_ports(1)[0]}"

        def aggregate(request: Message) -> Message:
            return Message(payload={"digests": {k: _digest(a) for k, a in request.payload.items()}})

        server = Cell("server", url, secure=False, credentials={})
        agent = Cell("agent", url, secure=False, credentials={})
        for c in (server, agent):
            c.register_request_cb(channel="viacodec_test", topic="update", cb=aggregate)
            c.core_cell.start()
        try:
            model = _model(2)
            for _ in range(100):  # until the cells have connected
                req = Message(payload=model)
                reply = agent.send_request(channel="viacodec_test", topic="update", target="server", request=req, timeout=TIMEOUT)
                if isinstance(reply.payload, dict):
                    break
                time.sleep(0.1)
            (tx,) = vf.transactions(req)
            outcome = tx.wait(timeout=TIMEOUT)
            out.put(
                (
                    "ok",
                    {
                        "digests": reply.payload["digests"] == {k: _digest(a) for k, a in model.items()},
                        "state": outcome.state.value,
                        "confirmed": outcome.confirmed,
                        "sender_item_bytes": vf.host(agent).stats().bytes_served,
                    },
                )
            )
        finally:
            agent.core_cell.stop()
            server.core_cell.stop()
            vf.unregister()
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(e)))


def test_flare_register_store(weed, monkeypatch):
    """Two FLARE cells with register(store=...): the agent's update goes
    through the store, arrives bit for bit, and the agent's Host serves
    none of its bytes."""
    pytest.importorskip("nvflare")
    got = _run(_flare_send, weed, monkeypatch, f"s3://{weed['bucket']}/py-flare")
    assert got == {"digests": True, "state": "completed", "confirmed": ["server"], "sender_item_bytes": 0}


def test_flare_register_store_refused():
    """register refuses a store no Host could start with, at once."""
    pytest.importorskip("nvflare")
    import viacodec.flare as vf

    with pytest.raises(viacodec.InvalidError, match=r"^viacodec: host: .* is not s3://BUCKET/PREFIX"):
        vf.register(store="bucket/prefix")
    with pytest.raises(viacodec.InvalidError, match="store"):
        vf.register(store="")
    assert not vf.registered()
