"""torch.Tensor in the value model (viacodec/_torch.py): real torch, the
real library. dumps and Host.dumps take CPU tensors of every dtype both
sides know without copying contiguous ones; loads, Host.loads and
LazyRef.resolve give tensors with tensors="torch", allocated by torch and
filled by the library in place."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import viacodec
from viacodec import _skeleton

torch = pytest.importorskip("torch")  # requirements-torch.txt installs it

KiB = 1 << 10

# every torch dtype viacodec knows, with the core's name for it
DTYPES = [
    torch.bool,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.uint16,
    torch.uint32,
    torch.uint64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.complex64,
    torch.complex128,
    torch.float8_e4m3fn,
    torch.float8_e5m2,
]


def _bits(t: "torch.Tensor") -> bytes:
    """The tensor's bytes in C order, whatever its dtype."""
    t = t.detach().contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _random(dtype: "torch.dtype", shape: tuple, seed: int = 0) -> "torch.Tensor":
    """A tensor of every bit pattern the generator gives (NaN payloads,
    subnormals and -0.0 included for the float formats)."""
    g = np.random.default_rng(seed)
    itemsize = torch.empty((), dtype=dtype).element_size()
    n = int(np.prod(shape))
    if not n:
        return torch.empty(shape, dtype=dtype)
    raw = g.integers(0, 256, size=n * itemsize, dtype=np.uint8)
    if dtype is torch.bool:
        raw &= 1
    return torch.from_numpy(raw).view(dtype).reshape(shape)


def same_tensor(a: "torch.Tensor", b: "torch.Tensor") -> bool:
    return type(b) is torch.Tensor and a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape) and _bits(a) == _bits(b)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_dtype_round_trips_bit_exact(dtype):
    for shape in [(3, 5), (0,), (), (2, 0, 3), (40, 41)]:  # small and slot-sized
        t = _random(dtype, shape)
        got = viacodec.loads(viacodec.dumps({"t": t}), tensors="torch")["t"]
        assert same_tensor(t, got), (dtype, shape)


def test_torch_and_numpy_write_the_same_message():
    # A tensor is written as the array of the same dtype would be: a
    # receiver cannot tell, and the default gives it numpy.
    for dtype in (torch.float32, torch.int64, torch.bool, torch.complex64, torch.uint8):
        t = _random(dtype, (64, 33), seed=1)
        assert viacodec.dumps([t]) == viacodec.dumps([t.numpy()])
    t = _random(torch.bfloat16, (64, 33), seed=2)
    a = viacodec.loads(viacodec.dumps(t))
    assert isinstance(a, np.ndarray) and str(a.dtype) == "bfloat16" and a.tobytes() == _bits(t)
    assert viacodec.dumps(a) == viacodec.dumps(t)


def test_bfloat16_and_float8_known_bit_patterns():
    # The bits go through unchanged: no conversion through float32.
    cases = {
        torch.bfloat16: [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC1, 0xFFFF, 0x0001, 0x3F80],
        torch.float8_e4m3fn: [0x00, 0x80, 0x7F, 0xFF, 0x01, 0x38],
        torch.float8_e5m2: [0x00, 0x80, 0x7C, 0x7D, 0xFF, 0x01, 0x3C],
    }
    for dtype, patterns in cases.items():
        wide = torch.int16 if dtype is torch.bfloat16 else torch.uint8
        raw = torch.tensor([p - (1 << 16) if wide is torch.int16 and p >= 1 << 15 else p for p in patterns], dtype=wide)
        t = raw.view(dtype)
        got = viacodec.loads(viacodec.dumps(t), tensors="torch")
        assert got.dtype == dtype and got.view(wide).tolist() == raw.tolist()


def test_contiguous_tensor_is_not_copied(monkeypatch):
    # The slot handed to the library points at the tensor's own memory.
    seen = []
    real = _skeleton.Writer.skeleton

    def spy(self, value):
        out = real(self, value)
        seen.extend(_skeleton.addresses(self.keep))
        return out

    monkeypatch.setattr(_skeleton.Writer, "skeleton", spy)
    ts = [_random(torch.float32, (256, 256)), _random(torch.bfloat16, (1000,)), _random(torch.bool, (5000,))]
    base = torch.zeros(10_000, dtype=torch.int32)
    ts.append(base[100:9100])  # a contiguous view with an offset
    viacodec.dumps(ts)
    assert seen == [t.data_ptr() for t in ts]


def test_non_contiguous_tensor_is_made_contiguous_once(monkeypatch):
    calls = []
    real = torch.Tensor.contiguous

    def counting(self, *a, **k):
        calls.append(tuple(self.shape))
        return real(self, *a, **k)

    t = _random(torch.float32, (64, 128))[:, ::2]
    monkeypatch.setattr(torch.Tensor, "contiguous", counting)
    msg = viacodec.dumps({"t": t})
    monkeypatch.undo()
    assert calls == [(64, 64)]
    assert same_tensor(t, viacodec.loads(msg, tensors="torch")["t"])


def test_transposed_tensor_goes_column_major_without_a_copy():
    t = _random(torch.float64, (48, 40)).T  # Fortran order
    msg = viacodec.dumps(t)
    assert msg == viacodec.dumps(t.numpy())  # numpy sends it column-major too
    got = viacodec.loads(msg, tensors="torch")
    assert same_tensor(t, got) and got.stride() == t.stride()
    a = viacodec.loads(msg)
    assert a.flags.f_contiguous and a.tobytes(order="F") == t.numpy().tobytes(order="F")


def test_requires_grad_parameters_and_views_are_sent_as_data():
    p = torch.nn.Parameter(_random(torch.float32, (32, 32)))
    leaf = torch.ones(16, requires_grad=True)
    result = leaf * 3  # in the autograd graph
    got = viacodec.loads(viacodec.dumps({"p": p, "r": result}), tensors="torch")
    assert same_tensor(p, got["p"]) and not got["p"].requires_grad
    assert got["r"].tolist() == [3.0] * 16


def test_conjugate_and_negative_views_send_their_values():
    c = _random(torch.complex64, (10,), seed=3)
    got = viacodec.loads(viacodec.dumps([c.conj(), torch.tensor([1.0, 2.0]).neg()]), tensors="torch")
    assert torch.equal(got[0], c.conj().resolve_conj()) and got[1].tolist() == [-1.0, -2.0]


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's: complex32 experimental, quantization deprecated
def test_tensors_that_cannot_be_sent_get_clear_errors():
    meta = torch.empty(4, device="meta")
    with pytest.raises(viacodec.InvalidError, match=r"tensor on meta.*\.cpu\(\)"):
        viacodec.dumps({"w": meta})
    sparse = torch.eye(3).to_sparse()
    with pytest.raises(viacodec.InvalidError, match="sparse_coo.*to_dense"):
        viacodec.dumps(sparse)
    with pytest.raises(viacodec.InvalidError, match="torch.complex32"):
        viacodec.dumps(torch.zeros(3, dtype=torch.complex32))
    q = torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.qint8)
    with pytest.raises(viacodec.InvalidError, match="torch.qint8"):
        viacodec.dumps(q)


def test_loads_tensors_option():
    msg = viacodec.dumps({"big": np.arange(10_000, dtype=np.float32), "small": np.arange(3, dtype=np.int16), "z": np.float32(1.5)})
    got = viacodec.loads(msg, tensors="torch")
    assert type(got["big"]) is torch.Tensor and got["big"].dtype == torch.float32 and got["big"][-1] == 9999
    assert type(got["small"]) is torch.Tensor and got["small"].tolist() == [0, 1, 2]
    assert type(got["z"]) is np.float32  # scalars stay scalars
    assert isinstance(viacodec.loads(msg)["big"], np.ndarray)  # the default
    assert isinstance(viacodec.loads(msg, tensors="numpy")["big"], np.ndarray)
    got["big"][0] = 5  # writable, its own memory
    for bad in ("jax", "Torch", None, 1):
        with pytest.raises(viacodec.InvalidError, match="tensors="):
            viacodec.loads(msg, tensors=bad)


def test_decoded_tensor_memory_is_the_librarys_destination(monkeypatch):
    # loads(tensors="torch") hands the library the tensor's own memory:
    # the bytes are written there once, no numpy array in between.
    from viacodec import _codec

    addresses = []
    real = _codec.alloc_slots

    def spy(*a, **k):
        values, dst, refs = real(*a, **k)
        addresses.extend(dst.table["data"].tolist())
        return values, dst, refs

    monkeypatch.setattr(_codec, "alloc_slots", spy)
    got = viacodec.loads(viacodec.dumps([torch.ones(1 << 16), torch.zeros(4096, dtype=torch.bfloat16)]), tensors="torch")
    assert addresses == [t.data_ptr() for t in got]


def test_dict_with_int_keys_comes_back_as_a_dict():
    v = {0: "a", 1: {2: "b"}, -5: [1, 2], 2**70: None}
    got = viacodec.loads(viacodec.dumps(v))
    assert type(got) is dict and type(got[1]) is dict and got == v
    mixed = {0: "int", "lr": 0.1, 3: True}
    got = viacodec.loads(viacodec.dumps(mixed))
    assert type(got) is dict and got == mixed
    # what a dict cannot hold apart stays a Map
    m = viacodec.loads(viacodec.dumps(viacodec.Map([(1, "int"), (True, "bool")])))
    assert type(m) is viacodec.Map and len(m) == 2
    assert type(viacodec.loads(viacodec.dumps({b"k": 1, 2: 3}))) is viacodec.Map
    # a dict with int keys and a Map of the same pairs write the same bytes
    assert viacodec.dumps({1: "a", "b": 2}) == viacodec.dumps(viacodec.Map([(1, "a"), ("b", 2)]))


def test_optimizer_state_dict_round_trips_equal():
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(4, 8)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    assert any(type(k) is int for k in sd["state"])
    got = viacodec.loads(viacodec.dumps(sd), tensors="torch")
    assert type(got["state"]) is dict and got["state"].keys() == sd["state"].keys()
    for k, st in sd["state"].items():
        assert st.keys() == got["state"][k].keys()
        for name, t in st.items():
            assert same_tensor(t, got["state"][k][name]), (k, name)
    # param_groups: lists, floats, bools and tuples (betas) come back as lists
    assert got["param_groups"][0]["params"] == sd["param_groups"][0]["params"]
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    fresh.load_state_dict(got)  # torch takes it back
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], sd["state"][0]["exp_avg"])


def test_model_state_dict_round_trips_through_hosts():
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.BatchNorm1d(256), torch.nn.Linear(256, 10))
    sd = model.state_dict()
    sd["0.weight"] = sd["0.weight"].to(torch.bfloat16)
    assert sd["1.num_batches_tracked"].dim() == 0  # a 0-d int64 tensor
    with viacodec.Host(name="server", ref_threshold=4 * KiB) as server, viacodec.Host(name="agent") as agent:
        msg, tx = server.dumps({"round": 1, "model": sd}, receivers=1)
        relayed = viacodec.dumps(viacodec.loads(msg, pass_through=True))  # a relay
        got = agent.loads(relayed, tensors="torch")["model"]
        assert tx.wait(timeout=30).confirmed == ["agent"]
    assert got.keys() == sd.keys()
    for k, t in sd.items():
        assert same_tensor(t, got[k]), k
    model.load_state_dict({k: v.float() if v.dtype == torch.bfloat16 else v for k, v in got.items()})


def test_lazy_refs_resolve_to_tensors():
    t = _random(torch.bfloat16, (300, 300), seed=4)
    u = _random(torch.int64, (20_000,), seed=5)
    with viacodec.Host(name="src", ref_threshold=4 * KiB) as src, viacodec.Host(name="a") as a, viacodec.Host(name="b") as b:
        msg, tx = src.dumps({"t": t, "u": u}, receivers=2)
        v = viacodec.loads(msg, pass_through=True)
        assert v["t"].dtype_name == "bfloat16" and v["t"].shape == (300, 300)
        got = v["t"].resolve(a, tensors="torch")
        assert same_tensor(t, got)
        # a receipt counts once its receiver was served every piece: "a" resolves "u" too
        assert same_tensor(u, v["u"].resolve(a, tensors="torch"))
        both = b.resolve(viacodec.loads(msg, pass_through=True), tensors="torch")
        assert same_tensor(t, both["t"]) and same_tensor(u, both["u"])
        assert sorted(tx.wait(timeout=30).confirmed) == ["a", "b"]


def test_source_tensor_memory_kept_while_published():
    # Host.dumps keeps the tensor's memory until the transaction ends,
    # even when the caller lets go of the tensor.
    t = _random(torch.float32, (512, 1024), seed=6)  # over the default ref threshold
    want = _bits(t)
    with viacodec.Host(name="src") as src, viacodec.Host(name="dst") as dst:
        msg, tx = src.dumps({"t": t}, receivers=1)
        del t
        gc.collect()
        churn = [torch.full((512, 1024), 7.0) for _ in range(4)]  # would reuse freed memory
        got = dst.loads(msg, tensors="torch")["t"]
        assert tx.wait(timeout=30).confirmed == ["dst"]
    assert _bits(got) == want and churn[0][0, 0] == 7.0


def test_without_torch_the_option_says_what_to_install():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"  # import torch fails
        "import numpy as np, viacodec\n"
        "msg = viacodec.dumps({'w': np.ones(3)})\n"
        "assert viacodec.loads(msg)['w'].sum() == 3\n"
        "try:\n"
        "    viacodec.loads(msg, tensors='torch')\n"
        "except viacodec.InvalidError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "viacodec[torch]" in out.stdout


@pytest.mark.parametrize("snapshot", [False, True])
def test_host_serves_the_tensors_own_memory(snapshot):
    # By reference, the Host serves the tensor's memory itself: a change
    # made after dumps (what dumps says not to do) reaches the receiver, or
    # fails its checksum when the source had summed the piece before the
    # change (it does so in the background after a publish); with
    # snapshot=True the receiver gets the tensor as it was.
    t = torch.zeros(1 << 18)  # 1 MiB: by reference
    with viacodec.Host(name="src") as src, viacodec.Host(name="dst", retries=1) as dst:
        msg, tx = src.dumps({"t": t}, receivers=1, snapshot=snapshot)
        t.fill_(5.0)
        try:
            got = dst.loads(msg, tensors="torch")["t"]
        except viacodec.ChecksumError:
            assert not snapshot
            tx.abort()
            return
        assert tx.wait(timeout=30).confirmed == ["dst"]
    want = 0.0 if snapshot else 5.0
    assert got[0].item() == want and got[-1].item() == want
