"""Builds the package with its native library. Everything else is in
pyproject.toml.

The wheel holds libviacodec.so, the Go core built as a C shared library
(capi/), which the package loads with ctypes. `pip install
./bindings/python` (or `pip wheel`, or `make wheel`) builds it from the
repository this directory belongs to, with
`go build -buildmode=c-shared`: Go must be on PATH or in /usr/local/go/bin.
The wheel is tagged for this platform but any Python 3 (py3-none-<platform>),
as no Python extension is compiled.
"""

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent  # bindings/python is two levels below the module root

#: Where Go is looked for when it is not on PATH.
GO_FALLBACK = "/usr/local/go/bin/go"


def find_go() -> str:
    go = shutil.which("go") or (GO_FALLBACK if os.access(GO_FALLBACK, os.X_OK) else None)
    if go is None:
        raise SystemExit(
            "viacodec: building the package builds libviacodec.so from the Go sources, which needs Go "
            "(the version go.mod names, or later): put go on PATH or install it in /usr/local/go"
        )
    return go


class BuildWithLibrary(build_py):
    """build_py, then libviacodec.so (and its headers) into the build."""

    def run(self) -> None:
        super().run()
        if not (REPO / "go.mod").is_file() or not (REPO / "capi").is_dir():
            raise SystemExit(
                f"viacodec: {REPO} is not the viacodec repository (no go.mod and capi/): build the package "
                "from a checkout, where bindings/python lies two levels below go.mod"
            )
        if getattr(self, "editable_mode", False):
            # An editable install imports the package from the source
            # tree: the library goes there, as `make python` puts it.
            out = HERE / "viacodec"
        else:
            out = Path(self.build_lib).resolve() / "viacodec"
        out.mkdir(parents=True, exist_ok=True)
        lib = out / "libviacodec.so"  # go build writes libviacodec.h beside it
        cmd = [find_go(), "build", "-buildmode=c-shared", "-o", str(lib), "./capi"]
        self.announce(f"building {lib} in {REPO}: {' '.join(cmd)}", level=2)
        subprocess.run(cmd, cwd=REPO, check=True)
        shutil.copyfile(REPO / "capi" / "viacodec.h", out / "viacodec.h")


class PlatformWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


#: Where the build and its metadata go: outside the checkout, so that
#: `pip install ./bindings/python` leaves no build/ or *.egg-info there.
SCRATCH = tempfile.mkdtemp(prefix="viacodec-build-")
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)

setup(
    distclass=BinaryDistribution,
    cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel},
    options={"build": {"build_base": str(Path(SCRATCH) / "build")}, "egg_info": {"egg_base": SCRATCH}},
)
