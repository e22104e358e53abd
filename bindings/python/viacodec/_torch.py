"""torch.Tensor in the value model (optional: torch is imported only by
those who use it).

Encoding: a CPU tensor is an array like a numpy one. Its slot is a flat
uint8 numpy view of the tensor's own memory (no copy), with the core's
dtype code for the tensor's dtype: the bytes go as they are, so bfloat16
and float8 keep every bit with no conversion and no ml_dtypes. A
column-major tensor (a transpose) goes column-major as it is; any other
non-contiguous tensor is made contiguous once. Conjugate and negative
views are resolved, autograd is left behind (detach), and a tensor on
another device, sparse, quantized or of a dtype the core lacks is refused
with the fix in the message.

Decoding (tensors="torch"): torch allocates each slot's tensor, and the
library writes the bytes straight into it; arrays inside the skeleton
(small ones, 0-d) become tensors from their bytes.

The dtype codes are the core's (_dtypes.NAMES, core/dtype.go): torch
names its dtypes as the core does, so no table of our own maps them.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from . import _dtypes
from ._errors import InvalidError, MismatchError, UnsupportedTypeError

_CODE_OF_NAME = {name: code for code, name in _dtypes.NAMES.items()}


def check_option(tensors: Any) -> bool:
    """Checks loads' tensors= option; True for torch (importing it)."""
    if tensors == "numpy" and type(tensors) is str:
        return False
    if tensors == "torch" and type(tensors) is str:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise InvalidError("viacodec: tensors=\"torch\" needs PyTorch: pip install 'viacodec[torch]'") from None
        return True
    raise InvalidError(f'viacodec: tensors={tensors!r}: use "numpy" (the default) or "torch"')


def tensor_types() -> Tuple[type, ...]:
    """The exact tensor classes to hook into the encoder: torch.Tensor and
    torch.nn.Parameter when torch has been imported, else none (a value
    without torch imported holds no tensor)."""
    torch = sys.modules.get("torch")
    nn = getattr(torch, "nn", None)  # None while torch is still importing
    if nn is None:
        return ()
    return (torch.Tensor, nn.Parameter)


def is_tensor(v: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, getattr(torch, "Tensor", ()))


def sendable(t: Any) -> bool:
    """Whether slot() takes tensor t (a dense CPU tensor of a dtype the
    core knows)."""
    import torch

    return t.layout is torch.strided and t.device.type == "cpu" and code_of(t.dtype) is not None


def code_of(dtype: Any) -> Optional[int]:
    """The core's dtype code of a torch.dtype, or None."""
    name = str(dtype)
    return _CODE_OF_NAME.get(name[6:]) if name.startswith("torch.") else None


def torch_dtype(code: int) -> Any:
    """The torch.dtype of a core dtype code; MismatchError if none."""
    import torch

    dt = getattr(torch, _dtypes.NAMES.get(code, ""), None)
    if not isinstance(dt, torch.dtype):
        raise MismatchError(f"viacodec: dtype code {code} has no torch dtype")
    return dt


def slot(t: Any) -> Tuple[np.ndarray, int, Tuple[int, ...], int]:
    """A tensor as a slot: a flat uint8 numpy view of its bytes (of the
    tensor itself when contiguous, which the view keeps alive), its dtype
    code, shape and order (0 row-major, 1 column-major)."""
    import torch

    if t.layout is not torch.strided:
        kind = str(t.layout).replace("torch.", "")
        raise UnsupportedTypeError(f"viacodec: cannot encode a {kind} tensor: send its .to_dense() (or its parts)")
    if t.device.type != "cpu":
        raise InvalidError(f"viacodec: cannot encode a tensor on {t.device}: move it to the CPU first (tensor.cpu())")
    code = code_of(t.dtype)
    if code is None:
        raise UnsupportedTypeError(f"viacodec: cannot encode a tensor of dtype {t.dtype}")
    t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    shape = tuple(t.shape)
    order = 0
    if not t.is_contiguous():
        tt = t.permute(*reversed(range(t.dim())))
        if t.dim() >= 2 and tt.is_contiguous():
            t, order = tt, 1  # column-major: its reverse is row-major
        else:
            t = t.contiguous()
    if not t.numel():
        return np.empty(0, np.uint8), code, shape, order
    return t.reshape(-1).view(torch.uint8).numpy(), code, shape, order


def empty(code: int, shape: Tuple[int, ...], order: int) -> Tuple[Any, int]:
    """A new tensor for a slot, and the address the library fills."""
    import torch

    dt = torch_dtype(code)
    try:
        if order == 1 and len(shape) >= 2:
            t = torch.empty(tuple(reversed(shape)), dtype=dt).permute(*reversed(range(len(shape))))
        else:
            t = torch.empty(shape, dtype=dt)
    except (RuntimeError, ValueError) as e:
        raise MismatchError(f"viacodec: cannot allocate a {shape} tensor: {e}") from e
    return t, (t.data_ptr() if t.numel() else 0)


def from_bytes(code: int, shape: Tuple[int, ...], order: int, data: bytes) -> Any:
    """A new tensor holding data (an array inside the skeleton)."""
    t, address = empty(code, shape, order)
    if len(data) != t.numel() * t.element_size():
        raise MismatchError(f"viacodec: {len(data)} bytes for a {shape} tensor of {t.dtype}")
    if address:
        _view_u8(t)[:] = np.frombuffer(data, np.uint8)
    return t


def _view_u8(t: Any) -> Any:
    """The bytes of a freshly allocated (dense) tensor, as a writable numpy view."""
    import torch

    if not t.is_contiguous():
        t = t.permute(*reversed(range(t.dim())))
    return t.reshape(-1).view(torch.uint8).numpy()


def array0(code: int) -> Callable[[bytes], Any]:
    """The skeleton hook of 0-d arrays of dtype code: a 0-d tensor."""
    return lambda b: from_bytes(code, (), 0, b)


def inline_array(v: List[Any], immutable: bool) -> Any:
    """The skeleton hook of a small inline array: a tensor."""
    code, shape, order, data = v
    return from_bytes(code, tuple(shape), order, data)


def to_numpy(t: Any) -> np.ndarray:
    """A numpy array over a (dense, CPU) tensor's memory, no copy;
    bfloat16 and float8 need ml_dtypes (MismatchError)."""
    import torch

    dt = _dtypes.dtype_of(code_of(t.dtype) or 0)
    shape = tuple(t.shape)
    if not t.numel():
        return np.empty(shape, dt)
    if not t.is_contiguous():
        rev = t.permute(*reversed(range(t.dim())))
        if rev.is_contiguous():  # column-major, as decoded
            return to_numpy(rev).T
        t = t.contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().view(dt).reshape(shape)


def from_mapped(a: np.ndarray) -> Any:
    """A tensor viewing a read-only numpy array (an offloaded
    numpy.memmap), no copy: the mapping stays alive with the tensor, and
    writing to it faults, as writing to the array would."""
    import torch

    code = _dtypes.code_of(a.dtype)
    if code is None:  # pragma: no cover - offloaded arrays have viacodec dtypes
        raise MismatchError(f"viacodec: no tensor dtype for {a.dtype}")
    if a.ndim >= 2 and not a.flags.c_contiguous:  # column-major, as decoded
        return from_mapped(a.T).permute(*reversed(range(a.ndim)))
    if not a.size:
        return torch.empty(a.shape, dtype=torch_dtype(code))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not writable": it is read-only on purpose
        u8 = torch.from_numpy(np.asarray(a).reshape(-1).view(np.uint8))
    return u8.view(torch_dtype(code)).reshape(a.shape)
