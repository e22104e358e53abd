"""Every Python block a reader copies from README.md,
bindings/python/README.md and docs/flare.md runs as it is shown: each in a
fresh interpreter, from an empty directory, with nothing defined for it
(the package on the path, as an install puts it). And the examples run as
a reader runs them."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from conftest import PKG_DIR, REPO

DOCS = ("README.md", "bindings/python/README.md", "docs/flare.md")
EXAMPLES = PKG_DIR.parent / "examples"


def blocks():
    for doc in DOCS:
        text = (REPO / doc).read_text()
        for m in re.finditer(r"```python\n(.*?)```\n", text, re.S):
            line = text.count("\n", 0, m.start()) + 2
            yield pytest.param(m.group(1), id=f"{doc}:{line}")


def run_fresh(args, cwd, **kw) -> subprocess.CompletedProcess:
    """A fresh interpreter: only the package on its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(PKG_DIR.parent)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kw)


def test_every_doc_has_blocks():
    found = {p.id.split(":")[0] for p in blocks()}
    assert found == set(DOCS)


@pytest.mark.parametrize("code", list(blocks()))
def test_block_runs_as_shown(code, tmp_path):
    got = run_fresh(["-c", code], tmp_path)
    assert got.returncode == 0, f"{code}\n---\n{got.stderr}"


def test_readme_quickstart_prints_its_outcome(tmp_path):
    text = (REPO / "README.md").read_text()
    section = text.split("### Python agent\n", 1)[1].split("\n### ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```\n", section, re.S)
    got = run_fresh(["-c", code], tmp_path)
    assert got.returncode == 0, got.stderr
    # a small message, both transactions complete, b moved halfway to 1
    size, rest = got.stdout.split(" ", 1)
    assert int(size) < 1024 and rest.strip() == "completed ['server'] [2. 2.]", got.stdout


def test_two_processes_example(tmp_path):
    got = run_fresh([str(EXAMPLES / "two_processes.py")], tmp_path)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("server: sends a task of ")
    assert lines[1] == "server: task completed by ['agent-1']; update from agent-1: w = 0.5, b = 2.0", got.stdout
    assert "agent: round 1, update completed by ['server']" in got.stderr


def test_fl_agent_writes_no_frames_to_a_terminal(tmp_path):
    """fl_agent.py speaks binary frames on its standard streams: run by
    hand on a terminal, it says how to run it instead of writing them."""
    leader, follower = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(PKG_DIR.parent)
        proc = subprocess.run([sys.executable, str(EXAMPLES / "fl_agent.py")], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                              stdout=follower, stderr=subprocess.PIPE, text=True, timeout=60)
        os.set_blocking(leader, False)
        try:
            written = os.read(leader, 1 << 16)
        except BlockingIOError:
            written = b""
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 2 and written == b"", (proc.returncode, written)
    assert "terminal" in proc.stderr and "make demo" in proc.stderr, proc.stderr
