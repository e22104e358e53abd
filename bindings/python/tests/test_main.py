"""python -m viacodec: a message file in diagnostic notation, as the
library writes it (the command's `viacodec inspect` prints the same)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

import viacodec

from conftest import PKG_DIR


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PKG_DIR.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "viacodec", *args], input=stdin, capture_output=True, env=env, timeout=60)


def test_inspects_a_message_file(tmp_path):
    msg = viacodec.dumps({"round": 3, "w": np.arange(4, dtype=np.float32)})
    f = tmp_path / "m.cbor"
    f.write_bytes(msg)
    got = run(str(f), "--width", "0")
    assert got.returncode == 0, got.stderr
    want = viacodec._ffi.lib().diagnose(msg, 0, False)
    assert got.stdout.decode() == want + "\n"
    assert '"round": 3' in want and "float32, 16 bytes" in want
    assert run("-", stdin=msg).stdout.decode().startswith(want[:20])
    full = run(str(f), "--full").stdout.decode()
    assert "/ float32" not in full and "h'0000000000" in full


def test_bad_input_is_one_line_and_status_1(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"\xff\x00")
    for args in ((str(junk),), (str(tmp_path / "missing"),)):
        got = run(*args)
        assert got.returncode == 1 and got.stdout == b""
        err = got.stderr.decode()
        assert err.startswith("python -m viacodec: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert run().returncode == 2
