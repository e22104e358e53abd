# viacodec build. Every target installs what it needs on a fresh machine:
# Go modules through `go`, Python packages into .venv/.

GO       ?= go
PYTHON   ?= python3
VENV     := .venv
# An execution count, not a duration: Go 1.26's fuzzing coordinator can
# fail a run with "context deadline exceeded" when a duration ends while a
# worker is busy (go.dev/issue/75804, fixed in Go 1.27). 600000 inputs
# take about 16 s here.
FUZZTIME ?= 600000x
BENCHTIME ?= 1s

.PHONY: all build check test test-go fuzz bench demo clean wasm weed

all: build

build:
	$(GO) build ./...

# check: formatting, vet, the core's portability, and a tidy go.mod.
check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) build ./core/...
	CGO_ENABLED=0 $(GO) build ./core/...
	$(GO) mod tidy -diff

# On a fresh machine the two longest installs, SeaweedFS's build (CPU) and
# the virtual environment's downloads (network), run side by side first.
test: tools
	$(MAKE) check test-go fuzz test-python

.PHONY: tools
tools:
	$(MAKE) -j2 weed venv

# The race detector slows arithmetic twentyfold, so the exhaustive float
# conversion checks, and compiling the wasm guest afresh, run without it
# (-short trims them under -race).
test-go: weed
	$(GO) test -race -short -count=1 ./...
	$(GO) test -count=1 ./core/internal/fp/
	$(GO) test -count=1 -run '^TestCacheDir$$' ./wasm/

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./core/

# wasm: the guest module wasm/internal/guestwasm/viacodec.wasm, built from
# wasm/guest and embedded by the host package wasm. Its build flags live in
# wasm/internal/guestbuild; the guestwasm test, which make test runs,
# rebuilds it and fails when the committed file is older than its sources.
wasm:
	$(GO) test ./wasm/internal/guestwasm -run '^TestEmbeddedGuest$$' -count=1 -args -update

bench:
# Every package's benchmarks, one pass of BENCHTIME each: about 1.5 min on
# 2 cores (see docs/benchmarks.md). GOFLAGS=-count=3 repeats each one.
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

# demo: the inline round trip, then three federated rounds on loopback: the
# server, a relay, three Go agents, an agent whose codec runs in a wasm guest
# and a Python agent, each a process of its own (the Python agent needs the
# library and .venv): about 10 s on 2 cores.
demo: venv python
	PYTHONPATH=$(CURDIR)/$(PY_PKG) $(GO) run ./cmd/viacodec demo \
	  -python "$(CURDIR)/$(VENV)/bin/python $(CURDIR)/$(PY_PKG)/examples/fl_agent.py"

# weed: the SeaweedFS server that hostdl/s3store's tests run as a real S3
# engine (weed mini on loopback), built from the tools module
# tools/seaweedfs, which pins its version and keeps its dependencies out of
# go.mod, into .tools/bin. On a fresh machine about 8 minutes on 2 cores
# and about 0.5 GB of modules; rebuilt only when the tools module changes.
WEED := .tools/bin/weed
weed: $(WEED)
bench: weed

$(WEED): tools/seaweedfs/go.mod tools/seaweedfs/go.sum tools/seaweedfs/tools.go
	cd tools/seaweedfs && $(GO) build -ldflags='-s -w' -o $(CURDIR)/$(WEED) github.com/seaweedfs/seaweedfs/weed

clean:
	rm -rf $(VENV) bin dist .tools bindings/python/build bindings/python/viacodec.egg-info \
	  bindings/python/viacodec/libviacodec.so bindings/python/viacodec/libviacodec.h bindings/python/viacodec/viacodec.h

# ---- C ABI and Python package ----
# capi: libviacodec.so and libviacodec.h, built into the Python package.
# venv: .venv with the pinned packages of bindings/python/requirements-dev.txt
# (numpy, ml_dtypes, safetensors, pytest, cbor2, setuptools, nvflare) and
# of requirements-torch.txt (PyTorch for CPU use, without its GPU-only
# dependencies: installed with --no-deps, about 2.6 GB to download and
# about 2 minutes here: a fresh `make venv` took 230 s in all, load
# average 15), once per change of either file. --no-compile:
# byte-compiling torch's 2,500 modules took longer than unpacking it
# (272 s against 127 s with load average 20); Python compiles the few
# hundred a test imports on first use instead (about 10 s, once).
# test-python: the Python suite against the freshly built library. It also
# builds the wheel and installs it into a fresh virtual environment
# (test_install.py; VIACODEC_SKIP_WHEEL_TEST=1 skips that, and only that).
# test_store.py runs the SeaweedFS server `make weed` builds.

PY_PKG     := bindings/python
PY_LIB     := $(PY_PKG)/viacodec/libviacodec.so
VENV_STAMP := $(VENV)/.viacodec-requirements

.PHONY: capi python venv test-python

capi:
	$(GO) build -buildmode=c-shared -o $(PY_LIB) ./capi
	cp capi/viacodec.h $(PY_PKG)/viacodec/viacodec.h

python: capi

# wheel: dist/viacodec-*.whl, libviacodec.so inside (setup.py runs go build).
# `pip install ./bindings/python` does the same build and installs it.
.PHONY: wheel
wheel: venv
	$(VENV)/bin/python -m pip wheel --disable-pip-version-check -q --no-deps --no-build-isolation -w dist $(PY_PKG)

venv: $(VENV_STAMP)

$(VENV_STAMP): $(PY_PKG)/requirements-dev.txt $(PY_PKG)/requirements-torch.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r $(PY_PKG)/requirements-dev.txt
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps --no-compile -r $(PY_PKG)/requirements-torch.txt
	touch $@

# cmd: the viacodec command in bin/, which the Python suite runs to check
# pack and unpack against files the safetensors package and numpy write,
# and the demo with the Python agent.
CMD_BIN := bin/viacodec

test-python: venv python cmd weed
	VIACODEC_CMD=$(CURDIR)/$(CMD_BIN) PYTHONPATH=$(CURDIR)/$(PY_PKG) $(VENV)/bin/python -m pytest -q $(PY_PKG)/tests

.PHONY: cmd
cmd:
	$(GO) build -o $(CMD_BIN) ./cmd/viacodec

# bench-python: the Python package against numpy, pickle, memcpy and a raw
# socket, in one run (about 2 minutes on 2 cores; needs about 5 GiB of
# memory; docs/benchmarks.md, "Python"). `make bench` runs it first.
.PHONY: bench-python
bench: bench-python

bench-python: venv python
	PYTHONPATH=$(CURDIR)/$(PY_PKG) $(VENV)/bin/python $(PY_PKG)/bench.py

# bench-flare: viacodec.flare against FLARE's own numpy decomposer, then
# against its TensorDecomposer with a torch state_dict: two FLARE cells in
# two processes on loopback, a 512 MiB model (about 2 min on 2 cores, about
# 2.5 GiB of memory; docs/benchmarks.md, "FLARE").
# BENCH_FLARE_ARGS="--size 1024 --runs 5" changes the model and the runs.
.PHONY: bench-flare
bench: bench-flare

bench-flare: venv python
	PYTHONPATH=$(CURDIR)/$(PY_PKG) $(VENV)/bin/python $(PY_PKG)/bench_flare.py $(BENCH_FLARE_ARGS)
	PYTHONPATH=$(CURDIR)/$(PY_PKG) $(VENV)/bin/python $(PY_PKG)/bench_flare.py --torch $(BENCH_FLARE_ARGS)

# bench-offload: a server averages 8 updates offloaded to disk, tensor by
# tensor, within a 1.5 GiB memory budget (examples/offload_average.py;
# docs/benchmarks.md, "Offload"). The default updates are 512 MiB each
# (the clients' process holds 4 GiB, and TMPDIR takes 4 GiB);
# BENCH_OFFLOAD_ARGS="--size-mib 2048" is the issue's 2 GiB. Go's side,
# BenchmarkDownload in offload/, runs with `make bench`
# (VIACODEC_BENCH_OFFLOAD_MIB=4096 for a 4 GiB model).
.PHONY: bench-offload
bench: bench-offload

bench-offload: venv python
	PYTHONPATH=$(CURDIR)/$(PY_PKG) $(VENV)/bin/python $(PY_PKG)/examples/offload_average.py --clients 8 --size-mib 512 --tensors 64 --budget-mib 1536 $(BENCH_OFFLOAD_ARGS)
