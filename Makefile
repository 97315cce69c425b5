# ftune — see README.md. Every target works on a fresh clone with Go 1.26.
GO ?= go
PKGS := ./...

.PHONY: build test test-short test-purego test-arm64 fuzz bench lint demo clean

build:
	CGO_ENABLED=0 $(GO) build -o bin/ftune ./cmd/ftune

# The README's test command: the whole suite, including the pure-Go
# fallback and short fuzz runs (what .ci/run calls).
test:
	scripts/test.sh

test-short:
	$(GO) test $(PKGS)

test-purego:
	$(GO) test -tags purego ./kernels/... ./tensor/...

test-arm64:
	scripts/test-arm64.sh ./kernels/asm

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x ./kernels/asm/ ./bench/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

demo: build
	bin/ftune train

clean:
	rm -rf bin

include Makefile.cuda
