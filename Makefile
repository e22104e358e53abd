# viacodec build. Every target installs what it needs on a fresh machine:
# Go modules through `go`, Python packages into .venv/.

GO       ?= go
PYTHON   ?= python3
VENV     := .venv
FUZZTIME ?= 20s
BENCHTIME ?= 1x

.PHONY: all build check test test-go fuzz bench demo clean

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

test: check test-go fuzz

test-go:
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./core/

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./core/

demo:
	$(GO) run ./cmd/viacodec demo

clean:
	rm -rf $(VENV) bindings/python/viacodec/libviacodec.so bindings/python/viacodec/libviacodec.h
