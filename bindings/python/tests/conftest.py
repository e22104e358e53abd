"""Shared helpers of the viacodec test suite.

Run with `make test-python`, which builds libviacodec.so into the package
and runs pytest in .venv.
"""

from __future__ import annotations

import pathlib
import struct
from typing import Any

import numpy as np
import pytest

import viacodec

REPO = pathlib.Path(__file__).resolve().parents[3]
GOLDEN = REPO / "testdata" / "golden"
PKG_DIR = pathlib.Path(viacodec.__file__).resolve().parent


def same(a: Any, b: Any) -> bool:
    """Bit-exact equality of two decoded values: same types, same dtypes,
    shapes and bytes for arrays, same bits for floats (NaN payloads and
    -0.0 included)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes(order="A") == b.tobytes(order="A") and (
            a.flags.f_contiguous == b.flags.f_contiguous
        )
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):  # Map is a list too
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, viacodec.Object):
        return a.name == b.name and same(a.data, b.data)
    return bool(a == b)


@pytest.fixture(autouse=True)
def no_leaked_handles():
    """Every test leaves the library's handle table as it found it."""
    from viacodec import _ffi

    lib = _ffi.lib()
    before = lib.vc_handle_count()
    yield
    assert lib.vc_handle_count() == before, "a test leaked library handles"


# ---- a real S3 engine ----


@pytest.fixture(scope="session")
def weed(tmp_path_factory):
    """A SeaweedFS `weed mini` on loopback (the binary `make weed` builds),
    started by internal/weedtest/weedserve, which the Go tests' start
    shares (flags, identity, bucket, the loopback check): a dict of
    endpoint, access_key, secret_key, bucket and region. It stops when the
    session ends (weedserve's standard input closes)."""
    import json
    import shutil
    import subprocess

    go = shutil.which("go") or "/usr/local/go/bin/go"
    exe = tmp_path_factory.mktemp("weedserve") / "weedserve"
    subprocess.run([go, "build", "-o", str(exe), "./internal/weedtest/weedserve"], cwd=REPO, check=True, timeout=900)
    p = subprocess.Popen([str(exe)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()  # weedserve exits (EOF) if weed does not start
        if not line:
            pytest.fail(f"weedserve: weed did not start (exit {p.wait(timeout=60)}); run `make weed`")
        yield json.loads(line)
    finally:
        p.stdin.close()
        p.wait(timeout=60)


def store_env(w: dict) -> dict:
    """The AWS environment variables that point a process at the store w (weed)."""
    return {
        "AWS_ENDPOINT_URL_S3": w["endpoint"],
        "AWS_ACCESS_KEY_ID": w["access_key"],
        "AWS_SECRET_ACCESS_KEY": w["secret_key"],
        "AWS_REGION": w["region"],
    }
