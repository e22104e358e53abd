"""The Python agent of README.md's quickstart runs as it is shown: a server
Host sends it a task, and downloads the update it sends back."""

from __future__ import annotations

import re
from typing import Any, Dict

import numpy as np

import viacodec

from conftest import REPO


def quickstart() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Python agent\n", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```\n", section, re.S)
    assert len(blocks) == 1, "the Python agent quickstart has one python block"
    return blocks[0]


def test_readme_python_agent():
    model = {"w": np.zeros((512, 1024), np.float32), "b": np.full(1 << 18, 3, np.float32)}
    got: Dict[str, Any] = {}
    with viacodec.Host(name="server") as server:
        task, task_tx = server.dumps({"round": 1, "lr": 0.5, "model": model}, receivers=1)

        def send(reply: bytes) -> None:  # the server downloads the update
            assert len(reply) < 1024
            got.update(server.loads(reply, timeout=30))

        scope = {"task_message": task, "send": send}
        exec(compile(quickstart(), "README.md", "exec"), scope)
        assert task_tx.wait(timeout=30).confirmed == ["agent-1"]
    outcome = scope["outcome"]
    assert outcome.state == viacodec.TxState.COMPLETED and outcome.confirmed == ["server"]
    assert got["agent"] == "agent-1"
    # Every weight moved halfway toward 1, in float32.
    assert got["update"]["w"].dtype == np.float32 and bool((got["update"]["w"] == 0.5).all())
    assert bool((got["update"]["b"] == 2).all())
