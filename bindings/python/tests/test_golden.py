"""The golden files pin the wire format: every build decodes them and
re-encodes them byte for byte (docs/wire-format.md §8)."""

from __future__ import annotations

import ctypes

import pytest

import viacodec
from viacodec import _cbor, _ffi
from viacodec._types import default_registry

from conftest import GOLDEN, same

FILES = sorted(GOLDEN.glob("*.cbor"))


def holds_refs(data: bytes) -> bool:
    """Whether the envelope's batch table is non-empty (a by-reference
    message, which the inline codec does not decode)."""
    d = _cbor.Decoder(data, None, default_registry)
    d._head()  # envelope tag
    d._head()  # list of 3
    d._head()  # version
    d.off = _skip(data, d.off)
    major, n = d._head()
    return major == 4 and n > 0


def _skip(data: bytes, off: int) -> int:
    """Offset after the item at off."""
    d = _cbor.Decoder(data, None, default_registry)
    d.off = off
    major, arg = d._head()
    if major in (2, 3):
        return d.off + arg
    if major == 4:
        off = d.off
        for _ in range(arg):
            off = _skip(data, off)
        return off
    if major == 5:
        off = d.off
        for _ in range(2 * arg):
            off = _skip(data, off)
        return off
    if major == 6:
        return _skip(data, d.off)
    return d.off


def test_golden_files_exist():
    assert {"dtypes.cbor", "keys.cbor", "object.cbor", "sample.cbor", "scalars.cbor", "shapes.cbor"} <= {f.name for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_reencodes_identically(path):
    data = path.read_bytes()
    if holds_refs(data):
        # A relay's message: it decodes only in pass-through (LazyRefs),
        # and re-encodes byte for byte, by dumps and by a Host alike.
        with pytest.raises(viacodec.InvalidError, match="references"):
            viacodec.loads(data)
        v = viacodec.loads(data, pass_through=True)
        assert viacodec.dumps(v) == data
        with viacodec.Host() as h:
            assert h.dumps(v) == (data, None)
            assert viacodec.dumps(h.loads(data, pass_through=True)) == data
        return
    v = viacodec.loads(data)
    assert viacodec.dumps(v) == data
    # and from a bytearray and a memoryview alike
    assert same(viacodec.loads(bytearray(data)), v)
    assert same(viacodec.loads(memoryview(data)), v)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_python_skeleton_matches_go(path):
    """The Python encoder writes the same skeleton bytes as the Go core:
    deterministic CBOR, byte for byte."""
    data = path.read_bytes()
    lib = _ffi.lib()
    view = (ctypes.c_char * len(data)).from_buffer_copy(data)
    handle, skel_addr, skel_len, _, nslots = lib.decode(ctypes.addressof(view), len(data), _ffi.VcDecOptions(bytes_slot_min=1 << 16, pass_through=1))
    try:
        go_skel = ctypes.string_at(skel_addr, skel_len)
    finally:
        lib.release(handle)
    py_skel, slots = _cbor.encode_skeleton(viacodec.loads(data, pass_through=True), default_registry, bytes_slot_min=1 << 16)
    assert len(slots) == nslots
    assert bytes(py_skel) == go_skel


def test_golden_without_arrays_is_the_python_encoding():
    # These hold no array, so the skeleton is the message itself (ref
    # nodes included: they are LazyRefs in Python and in Go alike).
    for name in ("keys", "object", "scalars", "refs"):
        data = (GOLDEN / f"{name}.cbor").read_bytes()
        v = _cbor.decode_skeleton(data, None, default_registry)
        skel, slots = _cbor.encode_skeleton(v, default_registry)
        assert not slots and bytes(skel) == data, name
