"""The golden files pin the wire format: every build decodes them to the
values their JSON describes and re-encodes them byte for byte
(docs/wire-format.md, Appendix A; testdata/golden/README.md).

The package is checked through its public API only. cbor2, a CBOR decoder
we did not write, checks the files independently: it parses them, and each
array is rebuilt from its RFC 8746 tag alone."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from typing import Any, Dict, List

import cbor2
import ml_dtypes
import numpy as np
import pytest

import viacodec

from conftest import GOLDEN


def _names(suffix: str) -> List[str]:
    """Case names by file: positive ones in testdata/golden, lenient and
    bad ones in its lenient/ and bad/ (as "lenient/NAME.lenient")."""
    return sorted(str(p.relative_to(GOLDEN))[: -len(".cbor")] for p in GOLDEN.glob(suffix))


POSITIVE = _names("*.cbor")
LENIENT = _names("lenient/*.lenient.cbor")
BAD = _names("bad/*.bad.cbor")


def golden_json(name: str) -> Dict[str, Any]:
    return json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))


def golden_bytes(name: str) -> bytes:
    return (GOLDEN / f"{name}.cbor").read_bytes()


def holds_refs(data: bytes) -> bool:
    """Whether a message's batch table is non-empty (it holds ref nodes),
    as cbor2 reads it."""
    return bool(generic(data).value[2])


# A registry of its own, so that types other tests register cannot change
# what the golden typed objects decode to.
REGISTRY = viacodec.Registry()


def test_golden_cases_are_all_there():
    assert len(POSITIVE) >= 40 and len(LENIENT) >= 10 and len(BAD) >= 20
    # The first seven files, kept byte for byte since they were made.
    assert {"dtypes", "keys", "object", "refs", "sample", "scalars", "shapes"} <= set(POSITIVE)
    for name in POSITIVE + LENIENT + BAD:
        assert (GOLDEN / f"{name}.json").is_file(), name
    for name in LENIENT:
        assert golden_json(name)["twin"] in POSITIVE, name
    for name in BAD:
        assert set(golden_json(name)) == {"description", "kind", "offset", "options"}, name


# ---- The package's decoded values, described as the JSON does ----


def describe(v: Any, batches: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The JSON description of a decoded value. batches are the JSON's
    batch descriptors, which a LazyRef is looked up in by ref id."""
    if v is None:
        return {"type": "null"}
    if type(v) is bool:
        return {"type": "bool", "value": v}
    if type(v) is int:
        return {"type": "int", "value": str(v)}
    if type(v) is float:
        return {"type": "float", "width": 64, "bits": struct.pack(">d", v).hex()}
    if type(v) is np.float32:
        return {"type": "float", "width": 32, "bits": np.array(v, dtype=">f4").tobytes().hex()}
    if type(v) is np.float16:
        return {"type": "float", "width": 16, "bits": np.array(v, dtype=">f2").tobytes().hex()}
    if type(v) is str:
        return {"type": "text", "value": v}
    if type(v) is bytes:
        return {"type": "bytes", "hex": v.hex()}
    if type(v) is list:
        return {"type": "list", "items": [describe(x, batches) for x in v]}
    if type(v) is dict and all(type(k) is str for k in v):
        return {"type": "map", "entries": {k: describe(x, batches) for k, x in v.items()}}
    if type(v) is dict:  # int keys, or ints and strings: a map of the pairs kind
        assert all(type(k) in (int, str) for k in v), "a dict with a key that is neither int nor text"
        return {"type": "pairs", "pairs": [[describe(k, batches), describe(x, batches)] for k, x in v.items()]}
    if type(v) is viacodec.Map:
        return {"type": "pairs", "pairs": [[describe(k, batches), describe(x, batches)] for k, x in v]}
    if type(v) is np.ndarray:
        f_order = v.flags.f_contiguous and not v.flags.c_contiguous
        assert v.flags.c_contiguous or f_order, "a decoded array is not contiguous"
        return {
            "type": "array",
            "dtype": str(v.dtype),
            "shape": list(v.shape),
            "order": order_of(v.shape, f_order),
            "sha256": hashlib.sha256(v.tobytes(order="F" if f_order else "C")).hexdigest(),
        }
    if type(v) is viacodec.Object:
        return {"type": "object", "name": v.name, "data": describe(v.data, batches)}
    if type(v) is viacodec.LazyRef:
        index = [i for i, b in enumerate(batches) if b["ref_id"] == v.ref_id.replace("-", "")]
        assert len(index) == 1, f"no batch descriptor for {v!r}"
        assert batches[index[0]]["source"] == v.source
        assert batches[index[0]].get("holder", "") == v.holder
        return {
            "type": "ref",
            "batch": index[0],
            "item": v.item,
            "dtype": v.dtype_name,
            "shape": list(v.shape),
            "order": order_of(v.shape, v.order == "F"),
        }
    raise AssertionError(f"decoded a {type(v).__name__}, which the value model does not have")


def order_of(shape: Any, column_major: bool) -> str:
    """ "F" only where the order changes the layout (two or more
    dimensions longer than 1, none 0), as the JSON writes it."""
    return "F" if column_major and 0 not in shape and sum(1 for d in shape if d > 1) >= 2 else "C"


def canonical(node: Any) -> Any:
    """node with every pairs list sorted, so that maps compare as sets."""
    if isinstance(node, list):
        return [canonical(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: canonical(v) for k, v in node.items()}
    if out.get("type") == "pairs":
        out["pairs"] = sorted(out["pairs"], key=lambda p: json.dumps(p[0], sort_keys=True))
    return out


def load(data: Any, expected: Dict[str, Any]) -> Any:
    return viacodec.loads(data, pass_through=bool(expected["batches"]), registry=REGISTRY)


# ---- Positive cases ----


@pytest.mark.parametrize("name", POSITIVE)
def test_decodes_to_json(name):
    expected = golden_json(name)
    v = load(golden_bytes(name), expected)
    assert canonical(describe(v, expected["batches"])) == canonical(expected["value"])


@pytest.mark.parametrize("name", POSITIVE)
def test_reencodes_identically(name):
    data = golden_bytes(name)
    expected = golden_json(name)
    v = load(data, expected)
    assert viacodec.dumps(v, registry=REGISTRY) == data
    # From a bytearray and a memoryview alike.
    for buf in (bytearray(data), memoryview(data)):
        assert viacodec.dumps(load(buf, expected), registry=REGISTRY) == data
    assert holds_refs(data) == bool(expected["batches"])
    if expected["batches"]:
        # A relay's message: it decodes only in pass-through, and a Host
        # forwards it byte for byte as well.
        with pytest.raises(viacodec.InvalidError, match="references"):
            viacodec.loads(data, registry=REGISTRY)
        with viacodec.Host() as h:
            assert h.dumps(v, registry=REGISTRY) == (data, None)


# ---- Lenient cases ----


@pytest.mark.parametrize("name", LENIENT)
def test_lenient_decodes_as_twin_and_reencodes_deterministically(name):
    twin = golden_json(name)["twin"]
    expected = golden_json(twin)
    data = golden_bytes(name)
    assert data != golden_bytes(twin)
    v = load(data, expected)
    assert canonical(describe(v, expected["batches"])) == canonical(expected["value"])
    assert viacodec.dumps(v, registry=REGISTRY) == golden_bytes(twin)


# ---- Bad cases ----

# core.Kind names and the exception class of each (docs/wire-format.md §1).
EXCEPTIONS = {
    "invalid": viacodec.InvalidError,
    "syntax": viacodec.DecodeSyntaxError,
    "limit": viacodec.LimitError,
    "unknown tag": viacodec.UnknownTagError,
    "mismatch": viacodec.MismatchError,
    "unregistered": viacodec.UnregisteredError,
    "protocol": viacodec.ProtocolError,
}


@pytest.mark.parametrize("name", BAD)
def test_bad_raises_its_kind_at_its_offset(name):
    expected = golden_json(name)
    data = golden_bytes(name)
    cls = EXCEPTIONS[expected["kind"]]
    with pytest.raises(viacodec.ViacodecError) as info:
        viacodec.loads(data, pass_through=True, registry=REGISTRY, **expected["options"])
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
    if expected["kind"] == "unregistered":
        # The package looks names up in its own registry after the core has
        # decoded the message, where no offset into it is left.
        assert info.value.offset is None, str(info.value)
    else:
        assert info.value.offset == expected["offset"], str(info.value)


# ---- An independent decoder: cbor2 ----

ENVELOPE, OBJECT, REF = 0x56430000, 0x56430001, 0x56430002

# Typed-array tags: RFC 8746 §2 (64-87) and viacodec's extension tags
# (docs/wire-format.md §4), each to the numpy dtype of its bytes.
TYPED_ARRAY_TAGS = {
    64: np.dtype("u1"),
    65: np.dtype(">u2"),
    66: np.dtype(">u4"),
    67: np.dtype(">u8"),
    68: np.dtype("u1"),
    69: np.dtype("<u2"),
    70: np.dtype("<u4"),
    71: np.dtype("<u8"),
    72: np.dtype("i1"),
    73: np.dtype(">i2"),
    74: np.dtype(">i4"),
    75: np.dtype(">i8"),
    77: np.dtype("<i2"),
    78: np.dtype("<i4"),
    79: np.dtype("<i8"),
    80: np.dtype(">f2"),
    81: np.dtype(">f4"),
    82: np.dtype(">f8"),
    84: np.dtype("<f2"),
    85: np.dtype("<f4"),
    86: np.dtype("<f8"),
    0x56430010: np.dtype("bool"),
    0x56430011: np.dtype(ml_dtypes.bfloat16),
    0x56430012: np.dtype(ml_dtypes.float8_e4m3fn),
    0x56430013: np.dtype(ml_dtypes.float8_e5m2),
    0x56430014: np.dtype("<c8"),
    0x56430015: np.dtype("<c16"),
}


def generic(data: bytes) -> Any:
    """data parsed by cbor2, strictly: no duplicate keys, no indefinite
    lengths."""
    return cbor2.loads(data, allow_duplicate_keys=False, allow_indefinite=False)


def rebuild_array(item: Any) -> np.ndarray:
    """An array rebuilt from its RFC 8746 form alone: tag 40 or 1040
    around [shape, typed array], or a bare typed array."""
    assert isinstance(item, cbor2.CBORTag), item
    if item.tag in (40, 1040):
        shape, typed = item.value
        order = "F" if item.tag == 1040 else "C"
    else:
        typed, shape, order = item, None, "C"
    assert isinstance(typed, cbor2.CBORTag) and typed.tag in TYPED_ARRAY_TAGS, typed
    payload = typed.value
    assert type(payload) is bytes
    dtype = TYPED_ARRAY_TAGS[typed.tag]
    if dtype == np.dtype("bool"):
        assert set(payload) <= {0, 1}
    flat = np.frombuffer(payload, dtype)
    if shape is None:
        shape = [flat.size]
    a = flat.reshape(tuple(shape), order=order)
    return a.astype(dtype.newbyteorder("<"))  # big-endian tags: one swap per element


def match_generic(item: Any, node: Dict[str, Any], batches: List[Dict[str, Any]]) -> None:
    """Checks cbor2's item against the JSON description node."""
    t = node["type"]
    if t == "null":
        assert item is None
    elif t == "bool":
        assert item is node["value"]
    elif t == "int":
        assert type(item) is int and item == int(node["value"])
    elif t == "float":
        assert type(item) is float
        want = struct.unpack({16: ">e", 32: ">f", 64: ">d"}[node["width"]], bytes.fromhex(node["bits"]))[0]
        if math.isnan(want):
            assert math.isnan(item)
        else:
            assert item == want and math.copysign(1, item) == math.copysign(1, want)
    elif t == "text":
        assert type(item) is str and item == node["value"]
    elif t == "bytes":
        assert type(item) is bytes and item == bytes.fromhex(node["hex"])
    elif t == "list":
        assert isinstance(item, (list, tuple)) and len(item) == len(node["items"])
        for x, n in zip(item, node["items"]):
            match_generic(x, n, batches)
    elif t == "map":
        assert hasattr(item, "items") and set(item) == set(node["entries"])
        for k, n in node["entries"].items():
            match_generic(item[k], n, batches)
    elif t == "pairs":
        assert hasattr(item, "items") and len(item) == len(node["pairs"])
        for key, n in node["pairs"]:
            found = [v for k, v in item.items() if _same_key(k, key)]
            assert len(found) == 1, key
            match_generic(found[0], n, batches)
    elif t == "array":
        a = rebuild_array(item)
        column_major = isinstance(item, cbor2.CBORTag) and item.tag == 1040
        assert str(a.dtype) == node["dtype"] and list(a.shape) == node["shape"]
        assert order_of(a.shape, column_major) == node["order"]
        data = a.tobytes(order="F" if column_major else "C")
        assert hashlib.sha256(data).hexdigest() == node["sha256"]
    elif t == "object":
        assert isinstance(item, cbor2.CBORTag) and item.tag == OBJECT
        name, data = item.value
        assert name == node["name"]
        match_generic(data, node["data"], batches)
    elif t == "ref":
        assert isinstance(item, cbor2.CBORTag) and item.tag == REF
        batch, it, dtype, shape, order = item.value
        assert (batch, it, dtype, list(shape)) == (node["batch"], node["item"], node["dtype"], node["shape"])
        assert order in (0, 1) and order_of(shape, order == 1) == node["order"]
    else:
        raise AssertionError(f"unknown JSON type {t!r}")


def _same_key(k: Any, node: Dict[str, Any]) -> bool:
    """Whether cbor2's key k is the key the JSON describes (by type and
    value: the key 1 is not the key true)."""
    want = {
        "null": lambda: None,
        "bool": lambda: node["value"],
        "int": lambda: int(node["value"]),
        "text": lambda: node["value"],
        "bytes": lambda: bytes.fromhex(node["hex"]),
    }[node["type"]]()
    return type(k) is type(want) and k == want


def check_generic(data: bytes, expected: Dict[str, Any]) -> None:
    msg = generic(data)
    assert isinstance(msg, cbor2.CBORTag) and msg.tag == ENVELOPE
    version, body, batches = msg.value
    assert version == 1
    match_generic(body, expected["value"], expected["batches"])
    got = [
        {"source": s, "ref_id": r.hex(), "token": tok.hex(), "items": n, "bytes": nb, **({"holder": h[0]} if h else {})}
        for s, r, tok, n, nb, *h in batches
    ]
    assert got == expected["batches"]


@pytest.mark.parametrize("name", POSITIVE)
def test_cbor2_parses_and_rebuilds(name):
    check_generic(golden_bytes(name), golden_json(name))


@pytest.mark.parametrize("name", LENIENT)
def test_cbor2_parses_lenient(name):
    check_generic(golden_bytes(name), golden_json(golden_json(name)["twin"]))


def test_cbor2_rebuilds_every_array():
    """The cbor2 check is not vacuous: across the positive files it rebuilt
    arrays of every dtype, in both orders."""
    seen = set()

    def walk(item: Any) -> None:
        if isinstance(item, cbor2.CBORTag):
            if item.tag in (40, 1040):
                a = rebuild_array(item)
                seen.add((str(a.dtype), item.tag))
                return
            walk(item.value)
        elif isinstance(item, (list, tuple)):
            for x in item:
                walk(x)
        elif hasattr(item, "items"):
            for k, v in item.items():
                walk(k)
                walk(v)

    for name in POSITIVE:
        walk(generic(golden_bytes(name)))
    dtypes = {d for d, _ in seen}
    assert len(dtypes) == 17 and {tag for _, tag in seen} == {40, 1040}, sorted(seen)
