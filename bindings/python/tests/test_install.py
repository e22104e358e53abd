"""The package installs as a Python package: building a wheel builds
libviacodec.so with Go (setup.py), and the wheel, installed into a fresh
virtual environment, works there on its own, by reference included.

Building and installing take a minute or so and install numpy and cbor2
into the new environment with pip; VIACODEC_SKIP_WHEEL_TEST=1 skips the
wheel test, and nothing else does."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest
import setuptools

from conftest import PKG_DIR, REPO

PROJECT = PKG_DIR.parent  # bindings/python

ROUND_TRIP = textwrap.dedent(
    """
    import numpy as np, viacodec, os
    assert os.path.dirname(viacodec.library_path()) == os.path.dirname(viacodec.__file__)
    assert "site-packages" in viacodec.__file__, viacodec.__file__
    model = {"w": np.arange(1 << 20, dtype=np.float32), "b": np.float32(1.5)}
    with viacodec.Host(name="server") as server, viacodec.Host(name="agent") as agent:
        msg, tx = server.dumps({"round": 3, "model": model}, receivers=1)
        relayed = viacodec.dumps(viacodec.loads(msg, pass_through=True))
        got = agent.loads(relayed)
        out = tx.wait(timeout=60)
    assert len(msg) < 1000 and (got["model"]["w"] == model["w"]).all() and got["model"]["b"] == model["b"]
    assert out.confirmed == ["agent"]
    print("ok", viacodec.library_version())
    """
)


@pytest.mark.skipif(os.environ.get("VIACODEC_SKIP_WHEEL_TEST") == "1", reason="VIACODEC_SKIP_WHEEL_TEST=1")
def test_wheel_builds_installs_and_works(tmp_path):
    # Nothing of the source tree may leak in: pip would take the source
    # package on PYTHONPATH for an installed one.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIACODEC_LIBRARY")}
    # A checkout of the sources alone: the wheel's library must come from
    # its own Go build.
    checkout = _checkout(tmp_path)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist),
         str(checkout / "bindings" / "python")],
        check=True,
        timeout=900,
        env=env,
    )
    # the build and its metadata went elsewhere: the checkout is as it was
    assert not (checkout / "bindings/python/build").exists()
    assert not list((checkout / "bindings/python").glob("*.egg-info"))
    (wheel,) = dist.glob("viacodec-*.whl")
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl") or "-py3-none-" in wheel.name, wheel.name
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"viacodec/libviacodec.so", "viacodec/libviacodec.h", "viacodec/viacodec.h", "viacodec/_skeleton.py"} <= names
    assert "viacodec/_cbor.py" not in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=900, env=env)
    out = subprocess.run([str(python), "-c", ROUND_TRIP], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok "), out.stdout
    # cbor2 came as the pinned dependency, with its C extension
    deps = subprocess.run([str(python), "-c", "import cbor2, cbor2._cbor2; print(cbor2._cbor2.__file__)"], env=env,
                          capture_output=True, text=True, check=True)
    assert deps.stdout.strip().endswith(".so")


def _checkout(tmp_path):
    """A copy of the repository's sources (tracked and new files, no build
    output)."""
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, checkout / name)
    assert not (checkout / "bindings/python/viacodec/libviacodec.so").exists()
    return checkout


@pytest.mark.skipif(os.environ.get("VIACODEC_SKIP_WHEEL_TEST") == "1", reason="VIACODEC_SKIP_WHEEL_TEST=1")
def test_editable_install_builds_the_library(tmp_path):
    """`pip install -e ./bindings/python` builds libviacodec.so into the
    source tree, so the first call works, and leaves no build/ or
    egg-info behind. (numpy and cbor2 come from this interpreter's
    site-packages, so that nothing is downloaded.)"""
    import numpy

    checkout = _checkout(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIACODEC_LIBRARY")}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(numpy.__file__))  # numpy, cbor2, setuptools
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e",
                    str(checkout / "bindings" / "python")], check=True, timeout=900, env=env)
    project = checkout / "bindings" / "python"
    assert (project / "viacodec" / "libviacodec.so").is_file()
    assert not (project / "build").exists() and not list(project.glob("*.egg-info"))
    out = subprocess.run([str(python), "-c", ROUND_TRIP.replace('"site-packages"', '"checkout"')], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok "), out.stdout


def test_build_without_go_says_so(monkeypatch):
    """Without Go on PATH or in /usr/local/go/bin, the build stops with a
    message that says what is missing."""
    monkeypatch.setattr(setuptools, "setup", lambda **kw: None)
    build = runpy.run_path(str(PROJECT / "setup.py"))
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(build["find_go"].__globals__, "GO_FALLBACK", "/nonexistent/go")
    with pytest.raises(SystemExit, match="needs Go"):
        build["find_go"]()
