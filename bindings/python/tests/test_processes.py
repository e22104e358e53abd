"""By reference between processes (started with "spawn"): source and
agent; source, relay in pass-through and agent; and the receiver's memory
when it decodes a 1 GiB model twice in a row."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

import procs

MiB = 1 << 20
GiB = 1 << 30
TIMEOUT = 300

ctx = multiprocessing.get_context("spawn")


def expect(q: Any, kind: str) -> Any:
    got, data = q.get(timeout=TIMEOUT)
    assert got != "error", data
    assert got == kind, (got, data)
    return data


class Procs:
    """Started processes, joined (or killed) at the end."""

    def __init__(self) -> None:
        self.ps = []

    def start(self, target: Any, *args: Any) -> None:
        p = ctx.Process(target=target, args=args, daemon=True)
        p.start()
        self.ps.append(p)

    def join(self) -> None:
        for p in self.ps:
            p.join(TIMEOUT)
        for p in self.ps:
            if p.is_alive():  # pragma: no cover - only on failure
                p.kill()
                p.join()
        assert [p.exitcode for p in self.ps] == [0] * len(self.ps)


@pytest.fixture
def processes():
    ps = Procs()
    yield ps
    for p in ps.ps:
        if p.is_alive():  # pragma: no cover - a failed test
            p.kill()
            p.join()


def test_source_and_agent(processes):
    total, tensors = 64 * MiB, 8
    src_out, agent_in, agent_out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    processes.start(procs.source, None, src_out, total, tensors)
    processes.start(procs.agent, agent_in, agent_out, total, tensors)
    msg = expect(src_out, "msg")
    assert len(msg) < 4096
    agent_in.put(msg)
    got = expect(agent_out, "done")
    assert got["ok"] == [True]
    done = expect(src_out, "done")
    assert done["outcomes"] == [{"state": "completed", "receivers": [("agent", "confirmed", total)]}]
    assert done["bytes_served"] == total
    processes.join()


def test_source_relay_agent(processes):
    """The relay forwards without downloading: it holds no array byte (its
    memory barely grows), the source served the agent only, and the
    relay's server served its own array only."""
    total, tensors = 256 * MiB, 16
    src_out, relay_in, relay_out, agent_in, agent_out = (ctx.Queue() for _ in range(5))
    processes.start(procs.source, None, src_out, total, tensors)
    processes.start(procs.relay, relay_in, relay_out)
    processes.start(procs.agent, agent_in, agent_out, total, tensors)
    relay_in.put(expect(src_out, "msg"))
    agent_in.put(expect(relay_out, "fwd"))
    got = expect(agent_out, "done")
    assert got["ok"] == [True, True]
    relay = expect(relay_out, "done")
    assert relay["kinds"] == ["LazyRef"]
    assert relay["grew"] < 16 * MiB, relay  # the model is 256 MiB
    assert relay["bytes_served"] == MiB  # its own update, nothing of the model
    assert relay["outcome"] == {"state": "completed", "receivers": [("agent", "confirmed", MiB)]}
    assert relay["forwarded"] < relay["message"] + 1024
    src = expect(src_out, "done")
    assert src["outcomes"] == [{"state": "completed", "receivers": [("agent", "confirmed", total)]}]
    processes.join()


def test_decoding_1gib_twice_keeps_one_copy_resident(processes):
    """A receiver that decodes a 1 GiB model, drops it and decodes it
    again holds one model at a time: the bytes land in the numpy arrays
    and nowhere else."""
    total, tensors = GiB, 8
    src_out, agent_in, agent_out = ctx.Queue(), ctx.Queue(), ctx.Queue()
    processes.start(procs.source, None, src_out, total, tensors, 2)
    processes.start(procs.agent, agent_in, agent_out, total, tensors, 2)
    for _ in range(2):
        agent_in.put(expect(src_out, "msg"))
    got = expect(agent_out, "done")
    assert got["ok"] == [True, True]
    base, (first, second), peak = got["base"], got["rss"], got["peak"]
    slack = 160 * MiB
    assert first - base > total - slack, got  # it did hold the model
    assert second - base < total + slack, got  # one model, not two
    assert peak - base < total + slack, got  # never two at once
    src = expect(src_out, "done")
    assert [o["state"] for o in src["outcomes"]] == ["completed", "completed"]
    processes.join()
