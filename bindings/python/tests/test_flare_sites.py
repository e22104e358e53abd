"""viacodec.flare across sites, with real FLARE cells on 127.0.0.1: a
download whose source cannot be reached fails within FLARE's request
timeout (register's request_timeout and retries), and the sender's
transaction ends with no receiver. (A site that listens on nothing and
uploads is in test_flare.py: test_unreachable_site_uploads.)"""

from __future__ import annotations

import multiprocessing
import socket
import time
from typing import Any, List

import numpy as np
import pytest

pytest.importorskip("nvflare")

import viacodec  # noqa: E402
import viacodec.flare as vf  # noqa: E402
from nvflare.fuel.f3.cellnet.cell import Cell  # noqa: E402
from nvflare.fuel.f3.message import Message  # noqa: E402
from nvflare.fuel.utils.network_utils import get_open_ports  # noqa: E402

CHANNEL = "viacodec_sites"
THRESHOLD = 64 << 10
spawn = multiprocessing.get_context("spawn")


def _stranded_site(url: str, frozen_port: int, outbox: Any) -> None:
    """A site whose Host advertises an address where nothing answers (a
    firewall that drops what comes in): it replies by reference, and
    reports how its reply transactions ended."""
    try:
        import viacodec.flare as vf

        vf.register(ref_threshold=THRESHOLD, advertise_host=f"127.0.0.1:{frozen_port}", timeout=2.0)
        replies: List[Message] = []

        def echo(request: Message) -> Message:
            resp = Message(payload={"update": np.ones(1 << 18, np.float32)})
            replies.append(resp)
            return resp

        cell = Cell("site-x", url, secure=False, credentials={})
        cell.register_request_cb(channel=CHANNEL, topic="echo", cb=echo)
        cell.register_request_cb(channel=CHANNEL, topic="ping", cb=lambda req: Message(payload={"pong": "site-x"}))
        cell.core_cell.start()
        outbox.put(("ready", None))
        for _ in range(600):  # bounded: the reply is sent when the server asks
            if replies and vf.transactions(replies[0]):
                break
            time.sleep(0.1)
        outs = [tx.wait(timeout=60) for r in replies for tx in vf.transactions(r)]
        outbox.put(("done", [(o.state.value, o.confirmed) for o in outs]))
        cell.core_cell.stop()
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        outbox.put(("error", repr(e)))


def _server(url: str, outbox: Any) -> None:
    """The server, in a process of its own (its cell is "server"): asks
    site-x for its update, with FLARE's 40 s request timeout, and reports
    what happened and how long it took."""
    try:
        import viacodec
        import viacodec.flare as vf

        vf.register(ref_threshold=THRESHOLD, request_timeout=0.5, retries=1)
        server = Cell("server", url, secure=False, credentials={})
        server.core_cell.start()
        for _ in range(400):  # bounded: 400 tries of at most 0.5 s
            r = server.send_request(channel=CHANNEL, topic="ping", target="site-x", request=Message(payload={}), timeout=0.5)
            if isinstance(r.payload, dict) and r.payload.get("pong") == "site-x":
                break
            time.sleep(0.05)
        start = time.monotonic()
        try:
            server.send_request(channel=CHANNEL, topic="echo", target="site-x", request=Message(payload={"go": 1}), timeout=40.0)
            got = "a reply"
        except viacodec.ViacodecError as e:
            got = f"{type(e).__name__}: {e}"
        outbox.put(("done", (got, time.monotonic() - start)))
        server.core_cell.stop()
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        outbox.put(("error", repr(e)))


def test_a_download_that_cannot_start_fails_within_the_request_timeout():
    """The server cannot reach the site's Host (it advertises an address
    where nothing answers): the server's download of the site's reply
    fails after (retries + 1) × request_timeout, long before FLARE's 40 s
    request timeout (the defaults would take 5 × 30 s), and the site's
    transaction ends with nobody confirmed."""
    frozen = socket.create_server(("127.0.0.1", 0), backlog=64)  # the kernel accepts, nobody answers
    url = f"tcp://127.0.0.1:{get_open_ports(1)[0]}"
    server_out, site_out = spawn.Queue(), spawn.Queue()
    procs = [
        spawn.Process(target=_server, args=(url, server_out), daemon=True),
        spawn.Process(target=_stranded_site, args=(url, frozen.getsockname()[1], site_out), daemon=True),
    ]
    for p in procs:
        p.start()
    try:
        assert site_out.get(timeout=120) == ("ready", None)
        kind, got = server_out.get(timeout=180)
        assert kind == "done", got
        what, took = got
        assert what.startswith("ViacodecTimeoutError") and "request timeout" in what, what
        assert took < 20, took
        kind, outs = site_out.get(timeout=120)
        assert kind == "done", outs
        assert outs == [("timed out", [])]  # the sender learns that nobody received it
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():  # pragma: no cover - a failed test
                p.kill()
                p.join()
        frozen.close()
    assert [p.exitcode for p in procs] == [0, 0]


def test_forwarding_cell_fans_out_through_its_relay():
    """register(relay_budget=...): a cell that forwards references (decoded
    with pass-through) re-points them at its process's caching relay; two
    receivers behind it cost the origin one copy, and both confirm at the
    origin under their own names."""
    from nvflare.fuel.utils import fobs
    from nvflare.fuel.utils.fobs import FOBSContextKey

    vf.register(ref_threshold=THRESHOLD, relay_budget=32 << 20)
    try:
        url = "tcp://127.0.0.1:1"  # never started: FOBS needs the cells' names only
        origin, hop = Cell("fan_origin", url, secure=False, credentials={}), Cell("fan_hop", url, secure=False, credentials={})
        agents = [Cell(f"fan_agent{i}", url, secure=False, credentials={}) for i in range(2)]
        rng = np.random.default_rng(5)
        model = {f"l{i}": rng.standard_normal(1 << 17).astype(np.float32) for i in range(3)}
        size = sum(a.nbytes for a in model.values())

        ctx = origin.get_fobs_context({FOBSContextKey.NUM_RECEIVERS: 2})
        msg = Message(payload={"model": model})
        ctx[FOBSContextKey.MESSAGE] = msg
        data = fobs.dumps(msg.payload, fobs_ctx=ctx)
        (tx,) = vf.transactions(msg)

        lazy = fobs.loads(data, fobs_ctx=hop.get_fobs_context({FOBSContextKey.PASS_THROUGH: True}))
        assert {type(v).__name__ for v in lazy["model"].values()} == {"LazyRef"}
        fwd = fobs.dumps(lazy, fobs_ctx=hop.get_fobs_context())
        relay = vf._installed[0].relay(hop.core_cell)
        for a in agents:
            got = fobs.loads(fwd, fobs_ctx=a.get_fobs_context())
            assert all(np.array_equal(got["model"][k], model[k]) for k in model)
        out = tx.wait(timeout=30)
        assert out.state == viacodec.TxState.COMPLETED and sorted(out.confirmed) == ["fan_agent0", "fan_agent1"]
        st = relay.stats()
        assert vf.host(origin).stats().bytes_served == size == st.upstream_bytes  # one copy from the origin
        assert st.bytes_served == 2 * size
    finally:
        vf.unregister()
    with pytest.raises(viacodec.InvalidError):
        vf.register(listen=None, relay_budget=1 << 20)
