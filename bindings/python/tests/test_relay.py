"""viacodec.Relay, a pull-through caching relay through the real library:
several receivers behind it, one copy from the origin, receipts end to end."""

from __future__ import annotations

import numpy as np
import pytest

import viacodec

MiB = 1 << 20


def test_receivers_behind_a_relay_cost_the_origin_one_copy():
    model = {"w": np.arange(MiB, dtype=np.float32), "b": np.ones((512, 512))}
    size = sum(a.nbytes for a in model.values())
    names = [f"site-{i}" for i in range(4)]
    with viacodec.Host(name="server") as server, viacodec.Relay(budget=64 * MiB) as relay:
        sites = [viacodec.Host(name=n) for n in names]
        try:
            msg, tx = server.dumps({"model": model}, names=names)
            fwd = relay.forward(msg)
            assert fwd != msg
            refs = viacodec.loads(fwd, pass_through=True)
            assert refs["model"]["w"].holder == relay.source
            for s in sites:
                got = s.loads(fwd)["model"]
                assert all(np.array_equal(got[k], model[k]) for k in model)
            out = tx.wait(timeout=30)
            assert out.state == viacodec.TxState.COMPLETED and sorted(out.confirmed) == names
            st = relay.stats()
            assert server.stats().bytes_served == size == st.upstream_bytes
            assert st.bytes_served == len(sites) * size
            assert 0 < st.peak_bytes <= 64 * MiB
        finally:
            for s in sites:
                s.close()


def test_relay_refusals():
    with viacodec.Relay() as relay:
        with pytest.raises(viacodec.ViacodecError):
            relay.forward(b"\xff")
    assert relay.closed
    with pytest.raises(viacodec.InvalidError):
        relay.forward(b"")
    for kw in ({"budget": 0}, {"budget": 1 << 10}, {"listen": "0.0.0.0:0", "advertise": "relay.example"}, {"tls_client_auth": True}):
        with pytest.raises(viacodec.InvalidError):
            viacodec.Relay(**kw)
