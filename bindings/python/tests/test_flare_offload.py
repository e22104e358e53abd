"""viacodec.flare.register(offload_dir=DIR) with real FLARE cells on
127.0.0.1, in a process of their own ("spawn": registering is for the
whole process, and FLARE names cells process-wide): the arrays a receiving
cell's handler (an aggregator) gets are read-only numpy.memmap arrays over
a file in DIR, bit for bit, and the file goes when the last of them
does."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import time
from typing import Any, Dict, List

import numpy as np
import pytest

import viacodec

pytest.importorskip("nvflare")  # the test venv pins it; see requirements-dev.txt

import viacodec.flare as vf  # noqa: E402

CHANNEL = "viacodec_offload_test"
TIMEOUT = 30.0

spawn = multiprocessing.get_context("spawn")


def _digest(a: np.ndarray) -> str:
    return f"{a.dtype.str}{a.shape}{hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()}"


def _update() -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    update = {f"layer{i}.weight": rng.standard_normal((256, 512)).astype(np.float32) for i in range(3)}
    update["small"] = np.arange(10, dtype=np.float64)
    return update


def _aggregation(offload_dir: str, out: Any) -> None:
    """A client cell sends an update (a DXO) to the server cell, whose
    handler keeps it, as an aggregator does until it averages."""
    from nvflare.apis.dxo import DXO, DataKind, from_shareable
    from nvflare.fuel.f3.cellnet.cell import Cell
    from nvflare.fuel.f3.message import Message
    from nvflare.fuel.utils.network_utils import get_open_ports

    vf.register(ref_threshold=64 << 10, offload_dir=offload_dir)
    url = f"tcp://127.0.0.1:{get_open_ports(1)[0]}"
    held: List[Any] = []

    def aggregate(request: Message) -> Message:
        w = from_shareable(request.payload).data
        held.append(w)
        return Message(
            payload={
                "types": sorted({type(a).__name__ for a in w.values()}),
                "files": sorted({a.filename for a in w.values() if isinstance(a, np.memmap)}),
                "writeable": any(a.flags.writeable for a in w.values()),
                "digests": {k: _digest(a) for k, a in w.items()},
            }
        )

    server = Cell("server", url, secure=False, credentials={})
    agent = Cell("agent", url, secure=False, credentials={})
    for c in (server, agent):
        c.register_request_cb(channel=CHANNEL, topic="update", cb=aggregate)
        c.core_cell.start()
    try:
        shareable = DXO(data_kind=DataKind.WEIGHTS, data=_update()).to_shareable()
        for _ in range(100):  # until the cells have connected
            reply = agent.send_request(channel=CHANNEL, topic="update", target="server", request=Message(payload=shareable), timeout=TIMEOUT)
            if isinstance(reply.payload, dict):
                break
            time.sleep(0.1)
        result = dict(reply.payload)
        result["during"] = os.listdir(offload_dir)
        held.clear()  # the aggregator is done with the update
        for _ in range(100):
            gc.collect()
            if not os.listdir(offload_dir):
                break
            time.sleep(0.05)
        result["after"] = os.listdir(offload_dir)
        out.put(result)
    finally:
        agent.core_cell.stop()
        server.core_cell.stop()
        vf.unregister()


def test_aggregator_gets_memmaps(tmp_path):
    q = spawn.Queue()
    p = spawn.Process(target=_aggregation, args=(str(tmp_path), q))
    p.start()
    try:
        got = q.get(timeout=120)
    finally:
        p.join(timeout=60)
    assert got["types"] == ["memmap"] and not got["writeable"], got
    assert got["digests"] == {k: _digest(a) for k, a in _update().items()}
    (path,) = got["files"]
    assert os.path.dirname(path) == str(tmp_path) and got["during"] == [os.path.basename(path)]
    assert got["after"] == []


def test_offload_dir_must_exist(tmp_path):
    with pytest.raises(viacodec.InvalidError, match="not a directory"):
        vf.register(offload_dir=str(tmp_path / "missing"))
    assert not vf.registered()
