"""`viacodec demo` with every agent kind: Go agents and the Python agent of
examples/fl_agent.py, each a process of its own, at a small size. The
output is checked hop by hop, and the final model against one computed
here with numpy from the formulas of cmd/viacodec/internal/demo/model.go.

The command is built by `make test-python` into bin/viacodec (or named by
the VIACODEC_CMD environment variable)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from typing import Dict, List

import numpy as np

from conftest import REPO
from test_cmd_files import CMD

AGENT = REPO / "bindings" / "python" / "examples" / "fl_agent.py"
MiB = 1 << 20
SIZE_MIB, TENSORS, ROUNDS, GO_AGENTS = 4, 3, 2, 2


def run_demo(*extra: str) -> subprocess.CompletedProcess:
    assert os.access(CMD, os.X_OK), f"{CMD} is missing: `make test-python` builds it"
    args = [CMD, "demo", "-size", str(SIZE_MIB), "-tensors", str(TENSORS), "-rounds", str(ROUNDS),
            "-agents", str(GO_AGENTS), "-timeout", "2m", *extra]
    return subprocess.run(args, capture_output=True, timeout=180, text=True)


def reference_model(size: int, tensors: int, rounds: int, lr: np.float32, targets: List[np.float32]) -> Dict[str, np.ndarray]:
    """The demo's model after its rounds: the initial weights of
    splitmix64, then each round the average of every agent's step."""
    elems = size // 4
    model = {}
    with np.errstate(over="ignore"):
        for j in range(tensors):
            n = elems // tensors + (elems % tensors if j == tensors - 1 else 0)
            z = (np.uint64(j) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
            z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            u = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
            model[f"layers.{j}.weight"] = (u - np.float32(0.5)) * np.float32(0.04)
    for _ in range(rounds):
        for name, w in model.items():
            total = None
            for t in targets:
                update = w + lr * (t - w)
                total = update if total is None else total + update
            model[name] = total / np.float32(len(targets))
    return model


def digest(model: Dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(model):
        h.update(name.encode())
        h.update(model[name].tobytes())
    return h.hexdigest()


def test_demo_with_every_agent_kind():
    r = run_demo("-python", f"{sys.executable} {AGENT}")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    out = r.stdout
    agents = GO_AGENTS + 2
    assert re.search(rf"(?m)^summary: {ROUNDS} rounds in \S+; {agents} agents \(go {GO_AGENTS}, wasm 1, python 1\) took part in every round$", out), out
    arrays = ROUNDS * agents * TENSORS * 2
    assert f"\n  checksums: {arrays} of {arrays} arrays match (SHA-256 at source and receiver)\n" in out, out

    relay = re.search(rf"(?m)^  relay-1: held 0 array bytes and downloaded 0 B in {ROUNDS * (1 + agents)} forwards; "
                      r"peak RSS \S+ MiB, ([+-][0-9.]+) MiB since it started$", out)
    assert relay, out
    assert float(relay.group(1)) < SIZE_MIB / 2, "the relay's memory grew by the size of arrays"

    # The Python agent's hops, every round: the model from the server, its
    # update to the server, every digest matching.
    model, match = f"{SIZE_MIB}.0 MiB", f"{TENSORS}/{TENSORS} match"
    task = re.findall(rf"(?m)^  relay-1 -> py-agent\s+\S+ \S+\s+{re.escape(model)}\s+server\s+{re.escape(model)}\s+.*\s{match}\s+\S+ MiB$", out)
    update = re.findall(rf"(?m)^  relay-1 -> server\s+\S+ \S+\s+{re.escape(model)}\s+py-agent\s+{re.escape(model)}\s+.*\s{match}\s+\S+ MiB$", out)
    forward = re.findall(rf"(?m)^  py-agent -> relay-1\s+\S+ \S+\s+0 B\s+-\s+0 B, {TENSORS} lazy refs\s+.*\sno arrays\s+\S+ MiB$", out)
    assert len(task) == len(update) == len(forward) == ROUNDS, out
    assert out.count(f"average of {agents} updates: bit-exact to the server's own computation") == ROUNDS

    targets = [np.float32(t) for t in re.findall(r"(?m)^\S+\s+(?:go|wasm|python) agent \(pid \d+\), training target (\S+)$", out)]
    assert len(targets) == agents
    final = re.search(r"final model sha256 ([0-9a-f]{64})$", out.rstrip("\n"))
    assert final, out
    assert final.group(1) == digest(reference_model(SIZE_MIB * MiB, TENSORS, ROUNDS, np.float32(0.5), targets))


def test_demo_python_agent_that_fails(tmp_path):
    """A Python agent that fails before it says hello: one line, the
    agent's last word in it, exit status 1."""
    script = tmp_path / "agent.py"
    script.write_text("import sys\nprint('starting', file=sys.stderr)\nsys.exit('no agent here')\n")
    r = run_demo("-python", f"{sys.executable} {script}")
    assert r.returncode == 1, r.stdout
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr == "viacodec demo: py-agent (python): exited: exit status 1: no agent here\n", r.stderr
