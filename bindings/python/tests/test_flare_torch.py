"""viacodec.flare with torch tensors: register() takes over FLARE's
TensorDecomposer. Real FLARE cells on 127.0.0.1 (test_flare.py's), a
torch state_dict with bfloat16 and float32 tensors in plain dicts, DXOs,
FLModels and Shareables: by reference, bit for bit, back as torch tensors,
also through a forwarding cell that decodes with pass-through."""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List

import numpy as np
import pytest

import viacodec

torch = pytest.importorskip("torch")  # requirements-torch.txt installs it
pytest.importorskip("nvflare")

import viacodec.flare as vf  # noqa: E402
from nvflare.apis.dxo import DXO, DataKind, from_shareable  # noqa: E402
from nvflare.apis.shareable import Shareable  # noqa: E402
from nvflare.app_common.abstract.fl_model import FLModel, ParamsType  # noqa: E402
from nvflare.fuel.f3.cellnet.defs import MessageHeaderKey  # noqa: E402
from nvflare.fuel.f3.message import Message  # noqa: E402
from nvflare.fuel.utils import fobs  # noqa: E402
from test_flare import KiB, _handlers, _outcome, _receivers, _send, cells  # noqa: E402,F401


def _state_dict(seed: int) -> Dict[str, Any]:
    """A small model's state_dict: float32 and bfloat16 weights (random
    bits: NaN payloads, subnormals and -0.0 included), an int64 0-d
    counter, a float16 vector, small and large tensors."""
    g = torch.Generator().manual_seed(seed)

    def bits(dtype: Any, *shape: int) -> Any:
        n = int(np.prod(shape))
        size = torch.empty((), dtype=dtype).element_size()
        raw = torch.randint(0, 256, (n * size,), dtype=torch.uint8, generator=g)
        return raw.view(dtype).reshape(shape)

    return {
        "conv.weight": bits(torch.float32, 64, 32, 3, 3),  # 288 KiB
        "conv.bias": bits(torch.float32, 64),  # inline
        "fc.weight": bits(torch.bfloat16, 256, 512),  # 256 KiB
        "fc.bias": bits(torch.bfloat16, 256),
        "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
        "emb.weight": torch.randn(1000, 100, generator=g).to(torch.float16),
    }


def _digest(t: Any) -> str:
    assert type(t) is torch.Tensor, type(t)
    raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return f"{t.dtype}{tuple(t.shape)}{hashlib.sha256(raw).hexdigest()}"


def _digests(sd: Dict[str, Any]) -> Dict[str, str]:
    return {k: _digest(v) for k, v in sd.items()}


def test_registered_over_flares_tensor_decomposer():
    import nvflare.fuel.utils.fobs.fobs as fobs_mod
    from nvflare.app_opt.pt.decomposers import TensorDecomposer

    assert vf.registered()  # by the cells fixture (below)
    assert type(fobs_mod._decomposers["torch.Tensor"]).__module__ == "viacodec.flare"
    # FLARE's own stays behind it, for tensors in FLARE's format
    assert isinstance(fobs_mod._decomposers["torch.Tensor"]._previous, TensorDecomposer)


@pytest.fixture(autouse=True)
def _with_cells(cells):  # noqa: F811 - test_flare's fixture, used by every test here
    yield


def test_state_dict_bit_exact_both_ways(cells):
    got: Dict[str, Any] = {}
    replies: List[Message] = []

    def echo(fqcn: str, req: Message) -> Message:
        got["kinds"] = {type(v).__name__ for v in req.payload.values()}
        resp = Message(payload={"got": req.payload, "by": fqcn})
        replies.append(resp)
        return resp

    _handlers["echo"] = echo
    sd = _state_dict(1)
    reply = _send(cells["server"], "agent", "echo", sd)
    assert got["kinds"] == {"Tensor"}
    assert _digests(reply.payload["got"]) == _digests(sd)
    (tx,) = vf.transactions(reply.request)  # by reference
    assert _outcome(tx).confirmed == ["agent"]
    (back,) = vf.transactions(replies[0])  # and the echo back too
    assert _outcome(back).confirmed == ["server"]
    assert reply.request.get_header(MessageHeaderKey.PAYLOAD_LEN) < 16 * KiB


def test_dxo_flmodel_shareable_and_numpy_side_by_side(cells):
    sd = _state_dict(2)
    arr = np.arange(100_000, dtype=np.float32)  # numpy stays numpy
    dxo = DXO(data_kind=DataKind.WEIGHTS, data=dict(sd))
    model = FLModel(params_type=ParamsType.FULL, params=dict(sd), current_round=3, meta={"opt": {0: {"step": 5}}})
    shareable = DXO(data_kind=DataKind.WEIGHT_DIFF, data={"d": sd["fc.weight"]}).to_shareable()
    seen: Dict[str, Any] = {}

    def echo(fqcn: str, req: Message) -> Message:
        p = req.payload
        seen["types"] = (type(p["dxo"]).__name__, type(p["model"]).__name__, type(p["shareable"]).__name__, type(p["arr"]).__name__)
        return Message(
            payload={
                "dxo": _digests(p["dxo"].data),
                "model": _digests(p["model"].params),
                "meta": p["model"].meta,
                "shareable": _digests(from_shareable(p["shareable"]).data),
                "arr": bool(np.array_equal(p["arr"], arr)),
            }
        )

    _handlers["echo"] = echo
    reply = _send(cells["server"], "agent", "echo", {"dxo": dxo, "model": model, "shareable": shareable, "arr": arr})
    assert seen["types"] == ("DXO", "FLModel", "Shareable", "ndarray")
    p = reply.payload
    assert p["dxo"] == _digests(sd) and p["model"] == _digests(sd)
    assert p["shareable"] == {"d": _digest(sd["fc.weight"])}
    assert p["arr"] and p["meta"] == {"opt": {0: {"step": 5}}}
    (tx,) = vf.transactions(reply.request)
    assert _outcome(tx).confirmed == ["agent"]


def test_pass_through_forwarding_cell(cells):
    """server -> relay (pass-through) -> agent: the relay holds references
    to tensors, not tensors, and forwards them with a fresh tensor of its
    own; the agent downloads from the server and gets torch tensors; the
    relay never appears among the server's receivers."""
    seen: Dict[str, Any] = {}
    forwarded: List[Message] = []

    def fwd(fqcn: str, req: Message) -> Message:
        model = req.payload["model"]
        seen["kinds"] = {k: type(v).__name__ for k, v in model.items()}
        seen["is_ref"] = all(isinstance(v, viacodec.LazyRef) for k, v in model.items() if k in ("conv.weight", "fc.weight"))
        seen["bf16"] = model["fc.weight"].dtype_name
        value = {"model": model, "fresh": torch.full((64 * KiB,), 2.5, dtype=torch.bfloat16)}
        reply = _send(cells["relay"], "agent", "digest", value)
        forwarded.append(reply.request)
        return Message(payload=reply.payload)

    def digest(fqcn: str, req: Message) -> Message:
        p = req.payload
        return Message(payload={"model": _digests(p["model"]), "fresh": _digest(p["fresh"]), "by": fqcn})

    _handlers.update(fwd=fwd, digest=digest)
    sd = _state_dict(3)
    r = _send(cells["server"], "relay", "fwd", {"model": sd}, pass_through=True)
    assert seen["is_ref"] and seen["bf16"] == "bfloat16"
    assert seen["kinds"]["conv.bias"] == "Tensor"  # inline: the relay has the tensor itself
    assert r.payload["by"] == "agent"
    assert r.payload["model"] == _digests(sd)
    assert r.payload["fresh"] == _digest(torch.full((64 * KiB,), 2.5, dtype=torch.bfloat16))
    (tx,) = vf.transactions(r.request)
    out = _outcome(tx)
    assert _receivers(out) == ["agent"] and out.confirmed == ["agent"]
    (fresh_tx,) = vf.transactions(forwarded[0])
    assert _outcome(fresh_tx).confirmed == ["agent"]


def test_tensors_viacodec_cannot_send_go_flares_way(cells):
    # complex32 is a dtype the core lacks: FLARE's own decomposer sends
    # it (in a message where the others go by viacodec).
    odd = torch.zeros(4, dtype=torch.float8_e4m3fnuz)
    big = torch.ones(1 << 17)
    _handlers["echo"] = lambda fqcn, req: Message(payload={"odd": str(req.payload["odd"].dtype), "big": float(req.payload["big"].sum())})
    reply = _send(cells["server"], "agent", "echo", {"odd": odd, "big": big})
    assert reply.payload == {"odd": "torch.float8_e4m3fnuz", "big": float(1 << 17)}


def test_fobs_round_trip_without_a_cell():
    # FOBS alone (no cell: inline, through the library's own client)
    sd = _state_dict(4)
    got = fobs.loads(fobs.dumps({"sd": sd, "s": Shareable({"k": sd["fc.bias"]})}))
    assert _digests(got["sd"]) == _digests(sd) and _digest(got["s"]["k"]) == _digest(sd["fc.bias"])
