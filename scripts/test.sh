#!/usr/bin/env bash
# The full test suite: lint, every package, the pure-Go fallback, the arm64
# kernels under qemu-user (when qemu is installed) and short fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

echo "== lint"
make -s lint

echo "== generated assembly is up to date (go generate ./kernels/asm)"
go generate ./kernels/asm
git diff --exit-code --stat -- kernels/asm || { echo "kernels/asm: generated files differ from the generator's output; run go generate ./kernels/asm and commit"; exit 1; }

echo "== go test ./... (FTUNE_ARENA_CHECK=1: recycled step-arena buffers are NaN-poisoned)"
# Every training run in the tests then proves the arena contract: a tensor
# used after its micro-batch, or read before it is written, turns into NaN.
FTUNE_ARENA_CHECK=1 go test -count=1 ./...

echo "== go test -tags purego (Go fallback kernels)"
go test -count=1 -tags purego ./kernels/asm/ ./tensor/...

if command -v qemu-aarch64-static >/dev/null 2>&1 || command -v qemu-aarch64 >/dev/null 2>&1; then
  echo "== arm64 kernels under qemu-user"
  scripts/test-arm64.sh ./kernels/asm
else
  echo "== arm64 kernels: qemu-user not installed, not run (.ci/run installs it)"
fi

echo "== short fuzz runs"
# The data packages' fuzz workers each run under testutil.TestMemory of
# address space (their TestMain sets RLIMIT_AS, which workers inherit);
# two workers bound the total whatever the machine's core count.
fuzz() { go test -run '^$' -fuzz "^$2\$" -fuzztime "${3:-10s}" -parallel 2 "$1"; }
fuzz ./internal/safetensors FuzzParseHeader
for target in $(go test -list 'Fuzz.*' ./data/format 2>/dev/null | grep ^Fuzz); do fuzz ./data/format "$target" 5s; done
for target in $(go test -list 'Fuzz.*' ./data/format/parquet 2>/dev/null | grep ^Fuzz); do fuzz ./data/format/parquet "$target" 5s; done
for target in $(go test -list 'Fuzz.*' ./data/tokenizer 2>/dev/null | grep ^Fuzz); do fuzz ./data/tokenizer "$target" 5s; done
for target in $(go test -list 'Fuzz.*' ./data/chat 2>/dev/null | grep ^Fuzz); do fuzz ./data/chat "$target" 5s; done
for target in $(go test -list 'Fuzz.*' ./export/gguf 2>/dev/null | grep ^Fuzz); do fuzz ./export/gguf "$target" 5s; done

echo "== suite wall time: $(( $(date +%s) - start )) s"
