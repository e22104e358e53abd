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


def listening_ports() -> set:
    """The local ports in state LISTEN, from /proc/net/tcp and tcp6."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A":
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_a_host_that_listens_on_nothing_uploads():
    before = listening_ports()
    with viacodec.Host(listen=None, name="site-1") as site:
        assert site.source == ""
        # nothing of this process's listens anew (others' ports may come and go)
        with viacodec.Host(name="server") as server:
            mine = listening_ports() - before
            assert mine == {int(server.source.rsplit(":", 1)[1])}, mine
            update = {"w": np.arange(1 << 18, dtype=np.float32)}
            with pytest.raises(viacodec.InvalidError, match="listens on nothing"):
                site.dumps(update)
            with pytest.raises(viacodec.InvalidError, match="listens on nothing"):
                site.grant_upload(1 << 20)
            msg, tx = site.dumps({"small": np.arange(3)})  # inline: nothing to publish
            assert tx is None
            msg, tx = site.dumps(update, upload=server.grant_upload(4 << 20))
            np.testing.assert_array_equal(server.loads(msg)["w"], update["w"])
            assert tx.wait(timeout=30).confirmed == ["server"]
            # and it downloads as any Host
            msg, tx = server.dumps(update, names=["site-1"])
            np.testing.assert_array_equal(site.loads(msg)["w"], update["w"])
            assert tx.wait(timeout=30).confirmed == ["site-1"]


def test_listen_none_takes_no_address():
    with pytest.raises(viacodec.InvalidError, match="listens on nothing"):
        viacodec.Host(listen=None, advertise="site-1.example")


def test_a_download_that_cannot_start_fails_soon():
    """request_timeout and retries bound a download from a source that
    accepts connections and never answers: it fails after about
    (retries + 1) × request_timeout, not after 5 × 30 s."""
    import socket
    import time

    frozen = socket.create_server(("127.0.0.1", 0), backlog=64)  # the kernel accepts, nobody answers
    try:
        src = f"http://127.0.0.1:{frozen.getsockname()[1]}"
        with viacodec.Host(advertise=src) as stuck, viacodec.Host(request_timeout=0.2, retries=1) as agent:
            msg, tx = stuck.dumps({"w": np.ones(1 << 20, np.uint8)})
            start = time.monotonic()
            with pytest.raises((viacodec.ViacodecTimeoutError, viacodec.SourceUnavailableError)):
                agent.loads(msg)
            assert time.monotonic() - start < 20  # the defaults would take 150 s
            assert tx.status().state == viacodec.TxState.OPEN  # the source heard nothing
    finally:
        frozen.close()
    for kw in ({"request_timeout": 0}, {"request_timeout": -1}, {"retries": -1}, {"retries": 1.5}, {"retries": 101}):
        with pytest.raises(viacodec.InvalidError):
            viacodec.Host(**kw)
