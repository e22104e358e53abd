"""Turning viacodec.flare on and off (without cells: test_flare.py's
cells keep it registered for their whole module)."""

from __future__ import annotations

import numpy as np
import pytest

import viacodec

pytest.importorskip("nvflare")  # the test venv pins it; see requirements-dev.txt

import viacodec.flare as vf  # noqa: E402
from conftest import same  # noqa: E402
from nvflare.fuel.utils import fobs  # noqa: E402


@pytest.fixture(autouse=True)
def unregistered():
    assert not vf.registered()
    yield
    vf.unregister()


def test_register_unregister():
    """register() puts ours in FLARE's place for numpy.ndarray (and
    viacodec.LazyRef); unregister() gives it back."""
    from nvflare.app_common.decomposers.numpy_decomposers import NumpyArrayDecomposer

    registry = fobs.fobs._decomposers
    vf.register()
    assert vf.registered() and type(registry["numpy.ndarray"]).__module__ == "viacodec.flare"
    assert fobs.get_dot_handler(vf.DOT) is registry["numpy.ndarray"]
    vf.register()  # the same options again: nothing happens
    with pytest.raises(viacodec.InvalidError, match="unregister"):
        vf.register(ref_threshold=1 << 10)
    with pytest.raises(viacodec.InvalidError, match="not a FLARE Cell"):
        vf.host(object())
    vf.unregister()
    assert not vf.registered() and type(registry["numpy.ndarray"]) is NumpyArrayDecomposer
    assert fobs.get_dot_handler(vf.DOT) is None
    assert "viacodec._refs.LazyRef" not in registry
    vf.unregister()  # idempotent
    with pytest.raises(viacodec.InvalidError, match="not registered"):
        vf.host(object())


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"download_timeout": -1}, "download_timeout"),
        ({"chunk_size": -1}, "chunk_size"),
        ({"ref_threshold": 1.5}, "ref_threshold"),
        ({"listen": ""}, "listen"),
    ],
)
def test_bad_options(kw, match):
    with pytest.raises(viacodec.InvalidError, match=match):
        vf.register(**kw)
    assert not vf.registered()


def test_without_a_cell_arrays_go_inline():
    """No cell in the FOBS context (a file, a test): the arrays travel
    inline in the datum, bit for bit."""
    vf.register()
    value = {"w": np.arange(1 << 20, dtype=np.float32).reshape(1024, 1024), "b": np.zeros(3, np.int8), "n": 1}
    assert same(fobs.loads(fobs.dumps(value)), value)


def test_flare_format_still_decodes():
    """A message in FLARE's own format (no cell: np.save inside) decodes
    with ours registered: the previous decomposer reads it."""
    data = fobs.dumps({"w": np.arange(6.0)})
    vf.register()
    assert same(fobs.loads(data), {"w": np.arange(6.0)})


def test_peer_without_viacodec_gets_clear_error():
    """A receiver that did not register cannot decode our datum, and FLARE
    says which Datum Object Type it lacks."""
    vf.register()
    data = fobs.dumps({"w": np.ones(10, np.float32)})
    vf.unregister()
    with pytest.raises(RuntimeError, match=f"Datum Object Type {vf.DOT}"):
        fobs.loads(data)
