"""Turning viacodec.flare on and off (without cells: test_flare.py's
cells keep it registered for their whole module)."""

from __future__ import annotations

import numpy as np
import pytest

import viacodec

pytest.importorskip("nvflare")  # the test venv pins it; see requirements-dev.txt

import viacodec.flare as vf  # noqa: E402
from conftest import same  # noqa: E402
from nvflare.fuel.f3.message import Message  # noqa: E402
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
        ({"exit_wait": -1}, "exit_wait"),
        ({"ref_threshold": 0}, "ref_threshold"),
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


def _pki(tmp_path, names):
    """A CA and, per name, a certificate and key signed by it (common name
    the name, subject alternative name 127.0.0.1), as FLARE's provisioning
    writes them."""
    from cryptography.hazmat.primitives import serialization
    from nvflare.lighter.utils import Identity, generate_cert, generate_keys, serialize_cert, serialize_pri_key

    ca_key, ca_pub = generate_keys()
    ca = generate_cert(Identity("root-ca"), Identity("root-ca"), ca_key, ca_pub, ca=True)
    (tmp_path / "rootCA.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out = {}
    for name in names:
        key, pub = generate_keys()
        cert = generate_cert(Identity(name), Identity("root-ca"), ca_key, pub, server_default_host="127.0.0.1")
        (tmp_path / f"{name}.crt").write_bytes(serialize_cert(cert))
        (tmp_path / f"{name}.key").write_bytes(serialize_pri_key(key))
        out[name] = (str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key"))
    return str(tmp_path / "rootCA.pem"), out


def test_tls_from_cell_credentials(tmp_path):
    """tls_from_cell: each cell's Host serves mutual TLS with the cell's
    FLARE credentials (a server pair, else a client pair); the receiver id
    is the certificate's common name; a cell without credentials cannot."""
    from nvflare.fuel.f3.cellnet.cell import Cell
    from nvflare.fuel.utils.fobs import FOBSContextKey

    ca, pairs = _pki(tmp_path, ["tls-server", "tls-site"])
    url = "tcp://127.0.0.1:1"  # never started: FOBS needs the cell's name and credentials only
    src = Cell(
        "tls_src", url, secure=True,
        credentials={"ca_cert": ca, "server_cert": pairs["tls-server"][0], "server_key": pairs["tls-server"][1]},
    )
    dst = Cell(
        "tls_dst", url, secure=True,
        credentials={"ca_cert": ca, "client_cert": pairs["tls-site"][0], "client_key": pairs["tls-site"][1]},
    )
    clear = Cell("tls_clear", url, secure=False, credentials={})
    vf.register(ref_threshold=1 << 16, tls_from_cell=True)
    assert vf.host(src).source.startswith("https://") and vf.host(dst).source.startswith("https://")
    model = {"w": np.arange(1 << 16, dtype=np.float32), "b": np.ones(3)}
    for a, b, receiver in ((src, dst, "tls-site"), (dst, src, "tls-server")):
        ctx = a.get_fobs_context()
        ctx[FOBSContextKey.MESSAGE] = msg = Message(payload=model)
        data = fobs.dumps(model, fobs_ctx=ctx)
        assert same(fobs.loads(data, fobs_ctx=b.get_fobs_context()), model)
        (tx,) = vf.transactions(msg)
        assert tx.wait(timeout=30).confirmed == [receiver]
    with pytest.raises(viacodec.InvalidError, match="no secure credentials"):
        vf.host(clear)
    # the wrong CA: the download is refused, and nothing is returned
    (tmp_path / "other").mkdir()
    other_ca, _ = _pki(tmp_path / "other", [])
    with viacodec.Host(tls_ca=other_ca, tls_cert=pairs["tls-site"][0], tls_key=pairs["tls-site"][1]) as stranger:
        ctx = src.get_fobs_context()
        data = fobs.dumps(model, fobs_ctx=ctx)
        lazy = fobs.loads(data, fobs_ctx={FOBSContextKey.PASS_THROUGH: True})
        with pytest.raises(viacodec.AuthError):
            viacodec.resolve(lazy, host=stranger)
    for c in (src, dst, clear):
        c.core_cell.stop()


def test_advertise_host_and_listen():
    """advertise_host names the host in the URL receivers are told; the
    port is chosen when the Host opens."""
    from nvflare.fuel.f3.cellnet.cell import Cell

    cell = Cell("adv_cell", "tcp://127.0.0.1:1", secure=False, credentials={})
    vf.register(listen="127.0.0.1:0", advertise_host="localhost")
    h = vf.host(cell)
    assert h.source.startswith("http://localhost:") and int(h.source.rsplit(":", 1)[1]) > 0
    with pytest.raises(viacodec.InvalidError, match="tls_from_cell"):
        vf.unregister()
        vf.register(tls_from_cell=True, tls_ca="/nonexistent")
    with pytest.raises(viacodec.InvalidError, match="host:port"):
        vf.register(listen="localhost")


def test_allow_cleartext():
    """Without TLS, a cell's Host beyond loopback needs allow_cleartext:
    register() refuses at once, not the first send."""
    from nvflare.fuel.f3.cellnet.cell import Cell

    vf.unregister()
    for kw in ({"listen": "127.0.0.1:0", "advertise_host": "192.0.2.7"}, {"listen": "0.0.0.0:0"}):  # never contacted
        with pytest.raises(viacodec.InvalidError, match="configure TLS, or allow cleartext"):
            vf.register(**kw)
        assert not vf.registered()
    with pytest.raises(viacodec.InvalidError, match="needs an address to advertise"):
        vf.register(listen="0.0.0.0:0", allow_cleartext=True)
    assert not vf.registered()
    vf.register(listen="127.0.0.1:0", advertise_host="192.0.2.7", allow_cleartext=True)
    h = vf.host(Cell("clear_cell_b", "tcp://127.0.0.1:1", secure=False, credentials={}))
    assert h.source.startswith("http://192.0.2.7:")


def test_upload_holder():
    """Where a process that cannot be reached uploads: upload_to (with
    the sender's job id for {job}), else the message's destination, else
    its one receiver, else its job's server cell."""
    from nvflare.fuel.f3.cellnet.defs import MessageHeaderKey
    from nvflare.fuel.f3.message import Message
    from nvflare.fuel.utils.fobs import FOBSContextKey

    class Core:
        def __init__(self, fqcn):
            self.fqcn = fqcn

        def get_fqcn(self):
            return self.fqcn

    trainer, root = Core("site-1.job-7.rank0"), Core("site-1")
    to_cj = Message(headers={MessageHeaderKey.DESTINATION: "site-1.job-7"})
    for opts, core, ctx, want in (
        ({"upload_to": "server.{job}"}, trainer, {FOBSContextKey.MESSAGE: to_cj}, "server.job-7"),
        ({"upload_to": "server.{job}"}, root, {}, "server"),
        ({"upload_to": "relay-eu"}, trainer, {FOBSContextKey.MESSAGE: to_cj}, "relay-eu"),
        ({}, trainer, {FOBSContextKey.MESSAGE: to_cj}, "site-1.job-7"),
        ({}, trainer, {FOBSContextKey.RECEIVER_IDS: ["server.job-7"]}, "server.job-7"),
        ({}, trainer, {FOBSContextKey.RECEIVER_IDS: ["a", "b"]}, "server.job-7"),
        ({}, root, {}, "server"),
    ):
        vf.register(listen=None, **opts)
        try:
            assert vf._installed[0].holder(core, ctx) == want, (opts, core.fqcn, ctx)
        finally:
            vf.unregister()
