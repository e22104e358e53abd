"""Offloaded decoding: Host.loads(msg, offload=DIR) and resolve(...,
offload=DIR) land the arrays in a safetensors file in DIR and return
read-only numpy.memmap arrays over it; the file goes with the last array
that views it, or stays when kept; errors leave no file behind."""

from __future__ import annotations

import gc
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import viacodec

from conftest import same
from test_roundtrip import ALL_DTYPES, random_array

MiB = 1 << 20


@pytest.fixture
def hosts():
    with viacodec.Host(name="source") as source, viacodec.Host(name="agent") as agent:
        yield source, agent


def message() -> dict:
    rng = np.random.default_rng(3)
    arrays = {f"a{i}": random_array(dt, (5, 7), seed=i) for i, dt in enumerate(ALL_DTYPES)}
    arrays["big"] = rng.standard_normal((512, 600)).astype(np.float32)  # by reference
    arrays["fortran"] = np.asfortranarray(rng.standard_normal((300, 500)))  # by reference, column-major
    arrays["empty"] = np.zeros((0, 3), np.float32)
    return {"round": 3, "model": arrays, "note": "hi", "blob": b"\x01" * 100_000}


def files(d: pathlib.Path) -> list:
    return sorted(p.name for p in d.iterdir())


def test_loads_offloaded(hosts, tmp_path):
    source, agent = hosts
    want = message()
    msg, tx = source.dumps(want)
    got = agent.loads(msg, offload=tmp_path)
    assert tx.wait(10).state.value == "completed"
    assert got["round"] == 3 and got["note"] == "hi" and got["blob"] == want["blob"]
    (name,) = files(tmp_path)
    for k, a in want["model"].items():
        g = got["model"][k]
        assert g.dtype == a.dtype and g.shape == a.shape and g.tobytes(order="A") == a.tobytes(order="A"), k
        if a.nbytes:
            assert type(g) is np.memmap and g.filename == str(tmp_path / name) and not g.flags.writeable, k
    assert got["model"]["fortran"].flags.f_contiguous
    del got, g
    gc.collect()
    assert files(tmp_path) == []


def test_without_offload_as_today(hosts):
    source, agent = hosts
    msg, _ = source.dumps(message())
    got = agent.loads(msg)
    assert all(type(a) is np.ndarray for a in got["model"].values())


def test_kept_file_opens_with_safetensors(hosts, tmp_path):
    safetensors = pytest.importorskip("safetensors")
    source, agent = hosts
    want = {"model": {"w": np.arange(MiB, dtype=np.float32), "b": np.ones(7, np.float64)}}
    msg, _ = source.dumps(want)
    got = agent.loads(msg, offload=tmp_path, offload_keep=True)
    path = got["model"]["w"].filename
    del got
    gc.collect()
    assert files(tmp_path) == [os.path.basename(path)]
    with safetensors.safe_open(path, "np") as f:
        assert sorted(f.keys()) == ["model.b", "model.w"]
        assert same(f.get_tensor("model.w"), want["model"]["w"])
        assert same(f.get_tensor("model.b"), want["model"]["b"])


def test_a_view_keeps_the_file(hosts, tmp_path):
    source, agent = hosts
    msg, _ = source.dumps({"w": np.arange(MiB, dtype=np.float32), "v": np.ones(MiB, np.float32)})
    got = agent.loads(msg, offload=tmp_path)
    view = np.asarray(got["w"])[10:20]
    del got
    gc.collect()
    assert len(files(tmp_path)) == 1
    assert view.tolist() == list(range(10, 20))
    del view
    gc.collect()
    assert files(tmp_path) == []


def test_resolve_offloaded(hosts, tmp_path):
    source, agent = hosts
    want = np.arange(MiB, dtype=np.int32)
    msg, _ = source.dumps({"w": want, "v": want[::-1].copy()}, receivers=2)
    relayed = viacodec.loads(msg, pass_through=True)
    one = relayed["w"].resolve(agent, offload=tmp_path)
    assert type(one) is np.memmap and same(np.asarray(one), want)
    both = agent.resolve(relayed, offload=tmp_path)
    assert type(both["v"]) is np.memmap and same(np.asarray(both["v"]), want[::-1].copy())
    assert len(files(tmp_path)) == 2
    del one, both, relayed  # resolve replaced the LazyRefs in relayed
    gc.collect()
    assert files(tmp_path) == []


def test_file_removed_under_the_arrays(hosts, tmp_path):
    source, agent = hosts
    want = np.arange(MiB, dtype=np.float64)
    msg, _ = source.dumps({"w": want})
    got = agent.loads(msg, offload=tmp_path)
    os.remove(got["w"].filename)
    assert same(np.asarray(got["w"]), want)  # the mapping holds the file
    del got
    gc.collect()  # the finalizer finds it gone: no error


def test_bad_options(hosts, tmp_path):
    source, agent = hosts
    msg, _ = source.dumps({"w": np.ones(MiB, np.float32)})
    with pytest.raises(viacodec.InvalidError, match="directory path"):
        agent.loads(msg, offload=3)
    with pytest.raises(viacodec.InvalidError, match="tensors='torch'"):
        agent.loads(msg, offload=tmp_path, tensors="torch")
    with pytest.raises(viacodec.InvalidError, match="no such file or directory"):
        agent.loads(msg, offload=tmp_path / "missing")
    assert files(tmp_path) == []


def test_source_gone_leaves_no_file(tmp_path):
    with viacodec.Host() as agent:
        with viacodec.Host() as source:
            msg, _ = source.dumps({"w": np.ones(MiB, np.float32)})
        with pytest.raises(viacodec.SourceUnavailableError):
            agent.loads(msg, offload=tmp_path, timeout=10)
    assert files(tmp_path) == []


@pytest.fixture
def mount(tmp_path):
    """Mounts tmpfs file systems under tmp_path; unmounts them after."""
    made = []

    def make(name: str, options: str) -> pathlib.Path:
        d = tmp_path / name
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], capture_output=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
        made.append(d)
        return d

    yield make
    for d in made:
        subprocess.run(["umount", str(d)], check=True)


def test_disk_errors(hosts, mount):
    source, agent = hosts
    full, ro = mount("full", "size=256k"), mount("ro", "size=1m,ro")
    msg, _ = source.dumps({"w": np.ones(MiB, np.float32)})
    with pytest.raises(viacodec.LimitError, match="no space left on device"):
        agent.loads(msg, offload=full)
    with pytest.raises(viacodec.InvalidError, match="read-only file system"):
        agent.loads(msg, offload=ro)
    assert files(full) == [] and files(ro) == []


def test_streaming_average_example(tmp_path):
    """examples/offload_average.py: a server averages 3 updates of a 96 MiB
    model within a 64 MiB budget (below one model), bit for bit, and
    leaves no file behind; the clients run in a process of their own."""
    example = pathlib.Path(viacodec.__file__).resolve().parent.parent / "examples" / "offload_average.py"
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(viacodec.__file__).resolve().parent.parent))
    args = ["--clients", "3", "--size-mib", "96", "--tensors", "16", "--budget-mib", "64", "--dir", str(tmp_path)]
    r = subprocess.run([sys.executable, str(example), *args], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "averaged 3 updates of 96 MiB (288 MiB)" in r.stdout and "files left: 0" in r.stdout
    assert files(tmp_path) == []
