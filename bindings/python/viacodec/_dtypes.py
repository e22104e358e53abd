"""numpy dtypes and their core.DType numbers (the vc_slot dtype codes).

bfloat16 and the float8 formats come from ml_dtypes when it is installed;
without it, arrays of those dtypes cannot be decoded (MismatchError).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ._errors import MismatchError

try:  # optional: bfloat16 and float8 dtypes
    import ml_dtypes as _ml_dtypes
except ImportError:  # pragma: no cover - exercised in a subprocess test
    _ml_dtypes = None

# core.DType numbers (core/dtype.go) and numpy names; never renumbered.
NAMES: Dict[int, str] = {
    1: "bool",
    2: "int8",
    3: "int16",
    4: "int32",
    5: "int64",
    6: "uint8",
    7: "uint16",
    8: "uint32",
    9: "uint64",
    10: "float16",
    11: "bfloat16",
    12: "float32",
    13: "float64",
    14: "complex64",
    15: "complex128",
    16: "float8_e4m3fn",
    17: "float8_e5m2",
}

_ML_NAMES = ("bfloat16", "float8_e4m3fn", "float8_e5m2")

#: slot dtype code of a byte string (core.DTypeInvalid)
BYTES = 0


def _numpy_dtype(name: str) -> Optional[np.dtype]:
    if name in _ML_NAMES:
        if _ml_dtypes is None:
            return None
        return np.dtype(getattr(_ml_dtypes, name))
    return np.dtype(name).newbyteorder("<")


#: code -> little-endian numpy dtype, or None when ml_dtypes is missing
BY_CODE: Dict[int, Optional[np.dtype]] = {code: _numpy_dtype(name) for code, name in NAMES.items()}

#: numpy dtype (little-endian or byte-order-free) -> code
CODES: Dict[np.dtype, int] = {dt: code for code, dt in BY_CODE.items() if dt is not None}

HAVE_ML_DTYPES = _ml_dtypes is not None


def code_of(dtype: np.dtype) -> Optional[int]:
    """Returns the code of dtype, ignoring byte order, or None."""
    code = CODES.get(dtype)
    if code is None and dtype.byteorder == ">":
        code = CODES.get(dtype.newbyteorder("<"))
    return code


def dtype_of(code: int) -> np.dtype:
    """Returns the numpy dtype of code; MismatchError when it has none."""
    dt = BY_CODE.get(code)
    if dt is None:
        name = NAMES.get(code)
        if name is None:
            raise MismatchError(f"viacodec: unknown dtype code {code}")
        raise MismatchError(f"viacodec: {name} arrays need the ml_dtypes package (pip install ml_dtypes)")
    return dt
