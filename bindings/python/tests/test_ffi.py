"""The C ABI as the Python package sees it: versions, the tables Python
keeps in step with core, struct layouts, the two encode paths."""

from __future__ import annotations

import ctypes
import doctest
import re
import shutil
import subprocess

import numpy as np
import pytest

import viacodec
from viacodec import _codec, _dtypes, _errors, _ffi, _skeleton, _slots, _types

from conftest import GOLDEN, PKG_DIR

from test_golden import holds_refs


def test_versions():
    lib = _ffi.lib()
    assert lib.vc_abi_version() == _ffi.ABI_VERSION
    assert viacodec.library_version() == viacodec.__version__
    assert viacodec.library_path() == str(PKG_DIR / "libviacodec.so")


def test_kind_names_match_core():
    lib = _ffi.lib()
    for kind, name in _errors.KIND_NAMES.items():
        assert lib.vc_kind_name(kind).decode() == name
    assert lib.vc_kind_name(len(_errors.KIND_NAMES)) is None, "core has a new kind: add its exception class"
    assert lib.vc_kind_name(-1) is None and lib.vc_kind_name(1000) is None


def test_dtype_names_match_core():
    lib = _ffi.lib()
    assert lib.vc_dtype_name(0) is None
    for code, name in _dtypes.NAMES.items():
        assert lib.vc_dtype_name(code).decode() == name
        assert _dtypes.BY_CODE[code].name == name
    assert lib.vc_dtype_name(max(_dtypes.NAMES) + 1) is None, "core has a new dtype"


#: every struct of the header, and its ctypes declaration
STRUCTS = [
    ("vc_error", _ffi.VcError),
    ("vc_slot", _ffi.VcSlot),
    ("vc_enc_options", _ffi.VcEncOptions),
    ("vc_dec_options", _ffi.VcDecOptions),
    ("vc_host_options", _ffi.VcHostOptions),
    ("vc_limits", _ffi.VcLimits),
    ("vc_publish_options", _ffi.VcPublishOptions),
    ("vc_receiver_status", _ffi.VcReceiverStatus),
    ("vc_outcome", _ffi.VcOutcome),
    ("vc_host_counters", _ffi.VcHostCounters),
    ("vc_relay_options", _ffi.VcRelayOptions),
    ("vc_relay_counters", _ffi.VcRelayCounters),
]


def test_struct_layouts_match_the_header():
    header = (PKG_DIR / "viacodec.h").read_text()
    assert f"#define VC_ABI_VERSION {_ffi.ABI_VERSION}" in header
    for struct, cls in STRUCTS:
        body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (struct, struct), header, re.S).group(1)
        fields = re.findall(r"^\s*[\w\s\*]*?[\s\*](\w+)(?:\[\d+\])?;", body, re.M)
        names = [n for n, _ in cls._fields_]
        assert fields == names, struct
    assert ctypes.sizeof(_ffi.VcSlot) == 40
    # numpy's view of the slot table has the same layout
    assert _ffi.SLOT_DTYPE.itemsize == ctypes.sizeof(_ffi.VcSlot)
    for name, _ in _ffi.VcSlot._fields_:
        assert _ffi.SLOT_DTYPE.fields[name][1] == getattr(_ffi.VcSlot, name).offset, name
    # every prototype in the header is declared in _ffi with its comment
    src = (PKG_DIR / "_ffi.py").read_text()
    for name in re.findall(r"^extern \S+ (vc_\w+)\(", header, re.M):
        assert f'"{name}"' in src, name
        assert re.search(r"#.*\b%s\(" % name, src), f"{name} lacks its C prototype comment"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_struct_offsets_match_the_compiler(tmp_path):
    """Each ctypes struct has the size and field offsets a C compiler gives
    the header's struct, padding included."""
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "viacodec.h"', "int main(void) {"]
    want = []
    for struct, cls in STRUCTS:
        lines.append(f'printf("%zu\\n", sizeof({struct}));')
        want.append(ctypes.sizeof(cls))
        for name, _ in cls._fields_:
            lines.append(f'printf("%zu\\n", offsetof({struct}, {name}));')
            want.append(getattr(cls, name).offset)
    lines += ["return 0;", "}"]
    src, exe = tmp_path / "offsets.c", tmp_path / "offsets"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", f"-I{PKG_DIR}", "-o", str(exe), str(src)], check=True, timeout=120)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=60)
    assert [int(x) for x in out.stdout.split()] == want


def test_marshal_equals_two_step_encode():
    lib = _ffi.lib()
    v = {"w": np.arange(10_000, dtype=np.float32), "b": b"x" * 100_000, "s": "t"}
    skel, w = _skeleton.write(v, viacodec.default_registry, 128, _slots.BYTES_SLOT_MIN)
    cslots, keep = _slots.slot_table(w)
    assert len(w.keep) == 2  # the array and the long byte string
    assert lib.marshal(skel, len(skel), cslots, len(w.keep), _ffi.VcEncOptions()) == viacodec.dumps(v)


def test_slot_name_is_not_reserved():
    # Skeletons mark slots with a tag of their own (wire-format §4.1), so a
    # typed object may have any name, "viacodec.slot" included, in every build.
    obj = viacodec.Object("viacodec.slot", 1)
    msg = viacodec.dumps(obj)
    assert msg == bytes.fromhex("da5643000083 01 da56430001 82 6d") + b"viacodec.slot" + bytes.fromhex("01 80")
    assert viacodec.loads(msg) == obj
    # the slot tag itself is never valid in a message
    with pytest.raises(viacodec.UnknownTagError) as e:
        viacodec.loads(bytes.fromhex("da5643000083 01 da56430003 00 80"))
    assert e.value.offset == 7


def test_doctests():
    import viacodec._codec
    import viacodec._host
    import viacodec._refs
    import viacodec._relay
    import viacodec._tx
    import viacodec._types

    for mod in (viacodec, viacodec._codec, viacodec._types, viacodec._host, viacodec._refs, viacodec._relay, viacodec._tx):
        failures, tried = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert failures == 0, mod.__name__
        assert tried > 0, mod.__name__


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_c_client(tmp_path):
    """A C program built against libviacodec.h (-Wall -Werror) decodes each
    golden file, fills the slots into its own memory and encodes them back
    byte for byte."""
    exe = tmp_path / "abi_roundtrip"
    src = PKG_DIR.parent / "tests" / "abi_roundtrip.c"
    subprocess.run(
        ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{PKG_DIR}", "-o", str(exe), str(src), f"-L{PKG_DIR}", "-lviacodec", f"-Wl,-rpath,{PKG_DIR}"],
        check=True,
        timeout=120,
    )
    for path in sorted(GOLDEN.glob("*.cbor")):
        if holds_refs(path.read_bytes()):
            continue
        out = subprocess.run([str(exe), str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("ok "), out.stdout
