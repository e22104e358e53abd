"""Uploads: a source that cannot be reached publishes by uploading its
batch to a host that granted it (docs/download-protocol.md §8.2)."""

import numpy as np
import pytest

import viacodec


def test_upload_to_the_server_that_reads_it_locally():
    with viacodec.Host(name="server") as server, viacodec.Host(name="agent") as agent:
        grant = server.grant_upload(8 << 20, timeout=60)
        update = {"w": np.arange(1 << 18, dtype=np.float32), "b": np.ones((512, 512), np.float64)}
        msg, tx = agent.dumps(update, upload=grant)
        # The message points at the holder, not at the agent.
        refs = viacodec.loads(msg, pass_through=True)
        assert refs["w"].source == server.source and refs["w"].holder == ""
        got = server.loads(msg)
        np.testing.assert_array_equal(got["w"], update["w"])
        np.testing.assert_array_equal(got["b"], update["b"])
        out = tx.wait(timeout=30)
        assert out.state.value == "completed" and out.confirmed == ["server"]
        # The server read its own table: no byte crossed the network.
        assert server.stats().bytes_served == 0 and agent.stats().bytes_served == 0


def test_upload_refused():
    with viacodec.Host(name="server") as server, viacodec.Host(name="agent") as agent:
        small = server.grant_upload(1 << 20)
        with pytest.raises(viacodec.LimitError):
            agent.dumps({"w": np.ones(1 << 20, np.float32)}, upload=small)
        with pytest.raises(viacodec.InvalidError):
            agent.dumps({"w": np.ones(1 << 20, np.float32)}, upload="not a grant")
        with pytest.raises(viacodec.InvalidError):
            server.grant_upload(0)
        with pytest.raises(viacodec.InvalidError):
            server.grant_upload(2 << 30)  # more than the host's upload budget (1 GiB)
        server.grant_upload(600 << 20)
        with pytest.raises(viacodec.LimitError):
            server.grant_upload(600 << 20)  # the budget is granted already
