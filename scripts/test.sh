#!/usr/bin/env bash
# The full test suite: lint, every package, the pure-Go fallback, the arm64
# kernels under qemu-user (when qemu is installed) and short fuzz runs.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
# stage prints a stage's header with the seconds the suite has run so far.
stage() { echo "== [$(( $(date +%s) - start )) s] $*"; }

stage "lint"
make -s lint

stage "the tracked tree leaves room for the GPU session's carry"
# A device session (scripts/gpu-bench.sh) receives the working tree and the
# packed test binaries, 64 MiB in all; the binaries take about 7 MiB
# (2026-12-07). Past 56 MiB the tree would leave the next GPU session
# unable to carry its binaries: shrink a fixture instead (scripts/carry.sh).
tree_bytes=$(git ls-files -z | du --files0-from=- -cb | tail -1 | cut -f1)
[ "$tree_bytes" -le $((56 << 20)) ] || { echo "the tracked tree is $tree_bytes bytes, over 56 MiB: the GPU session could not carry its binaries (scripts/carry.sh)"; exit 1; }

stage "generated assembly is up to date (go generate ./kernels/asm)"
go generate ./kernels/asm
git diff --exit-code --stat -- kernels/asm || { echo "kernels/asm: generated files differ from the generator's output; run go generate ./kernels/asm and commit"; exit 1; }

stage "go test ./... (FTUNE_POOL_CHECK=1: buffers the CPU pool recycles are NaN-poisoned)"
# Every CPU training run in the tests recycles what its steps release
# (tensor.UseCPUPool, the trainer's default); poisoned, a tensor released
# before its last use, or read before it is written, turns into NaN.
FTUNE_POOL_CHECK=1 go test -count=1 ./...

stage "go test -tags purego (Go fallback kernels)"
go test -count=1 -tags purego ./kernels/asm/ ./tensor/...

stage "go test -tags cudasim: the CUDA kernels, the CUDA backend, the trainer's device step, parity and recipe's device cases on ptxsim, a PTX interpreter (no GPU needed)"
# kernels/cuda's tests run with memcheck (always) and shared-memory
# racecheck on. Left out here, run by hand (go test -tags cudasim
# ./tensor/cudabackend/; ./parity/ -run CUDA): the bf16 conformance pass's
# attention cases (the same kernels as the float32 pass: attention does not
# depend on BF16MatMul) and TestParityCUDAFamiliesSlow (Gemma 2's 46
# layers, ~30 s per mode interpreted: Gemma 3 runs GeGLU, sliding and global
# layers, the conformance suite both soft-caps; and the DoRA and bf16 QLoRA
# cases whose ops other cases already cross, see slowCase in
# parity/cudafamily_test.go).
#
# Each of these runs keeps only about 1.5 cores busy (a launch's blocks run
# in parallel, but its last blocks and the host code between launches do
# not), so the four run side by side: about 4 minutes one after another on
# the 2-core machine, under 3 together. Each one's output is printed whole
# when it ends.
sim_names=() sim_pids=() sim_logs=()
sim() {
  local name=$1 log
  shift
  log=$(mktemp)
  "$@" >"$log" 2>&1 &
  sim_names+=("$name") sim_pids+=($!) sim_logs+=("$log")
}
sim "kernels/cuda (racecheck on)" env FTUNE_CUDASIM_RACECHECK=1 go test -count=1 -tags cudasim ./kernels/cuda/
sim "tensor/cudabackend" go test -count=1 -tags cudasim ./tensor/cudabackend/ -skip 'TestConformanceBF16MatMul/attention'
sim "parity, CUDA" go test -count=1 -tags cudasim ./parity/ -run 'TestParityCUDA|TestDPOParityCUDA' -skip 'TestParityCUDAFamiliesSlow'
sim "recipe, device" go test -count=1 -tags cudasim ./recipe/ -run 'Device|GEMMProvider|Precision|Optimizer'
sim_failed=()
for i in "${!sim_pids[@]}"; do
  rc=0
  wait "${sim_pids[$i]}" || rc=$?
  echo "-- ${sim_names[$i]}"
  cat "${sim_logs[$i]}"
  rm -f "${sim_logs[$i]}"
  [ "$rc" -eq 0 ] || sim_failed+=("${sim_names[$i]}")
done
if [ "${#sim_failed[@]}" -ne 0 ]; then
  echo "cudasim runs failed: ${sim_failed[*]}"
  exit 1
fi

# The arm64 kernels run under qemu-user beside the fuzz runs below: qemu
# emulates on one core (about 50 s), the fuzzers run for a fixed time, so
# side by side they take the longer of the two instead of both (about 45 s
# less on two cores; the fuzzers get through fewer inputs in their
# seconds). Its output is printed whole when it ends.
arm64() {
  # TestBF16DotSpeedup times the two products (BF16DotSpeedup): under
  # emulation that measures qemu, in 21 s; the kernels it times are
  # checked against the reference by TestGemmBF16DotMatchesReference.
  scripts/test-arm64.sh ./kernels/asm -- -test.skip '^TestBF16DotSpeedup$' &&
  # The tensor backend of precision bf16 on the NEON BFDOT kernel (qemu's
  # CPU has FEAT_BF16): its products and attention, about 2 s.
  scripts/test-arm64.sh ./tensor -- -test.run 'CPUBF16' &&
  # GGUF's quantizers, byte for byte ggml's on arm64 too, where Go would
  # fuse a multiply and an add that ggml's C rounds apart (a few seconds).
  scripts/test-arm64.sh ./export/gguf -- -test.run 'MatchLlamaCpp|WeightedQuants|KQuants|IQ4'
}
arm64_pid= arm64_log=
if command -v qemu-aarch64-static >/dev/null 2>&1 || command -v qemu-aarch64 >/dev/null 2>&1; then
  stage "arm64 kernels under qemu-user: started beside the fuzz runs, printed when done"
  arm64_log=$(mktemp)
  arm64 >"$arm64_log" 2>&1 &
  arm64_pid=$!
else
  stage "arm64 kernels: qemu-user not installed, not run (.ci/run installs it)"
fi

stage "short fuzz runs"
# The data packages' fuzz workers each run under testutil.TestMemory of
# address space (their TestMain sets RLIMIT_AS, which workers inherit);
# two workers bound the total whatever the machine's core count.
#
# Go 1.26's fuzz coordinator can fail a run with a bare "context deadline
# exceeded" when -fuzztime expires while a worker is mid-input
# (golang/go#75804, fixed in Go 1.27); seen here once in 2026-12. A real
# finding writes a failing input (or panics), so only a bare deadline
# without one is taken as that race, and then the target's corpus is
# replayed deterministically: the run passes only if that replay does.
fuzz() {
  local log rc=0
  log=$(mktemp)
  go test -run '^$' -fuzz "^$2\$" -fuzztime "${3:-10s}" -parallel 2 "$1" 2>&1 | tee "$log" || rc=$?
  if [ "$rc" -ne 0 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q -e 'Failing input written' -e 'panic:' "$log"; then
    echo "fuzz $2: the coordinator's deadline race (golang/go#75804), no failing input: replaying the corpus"
    rc=0
    go test -count=1 -run "^$2\$" "$1" || rc=$?
  fi
  rm -f "$log"
  return "$rc"
}
# A few seconds a target (the seed corpus and one to two seconds of new
# inputs) keep the suite near 10 minutes on two cores; fuzz for longer by
# hand, e.g. go test -run '^$' -fuzz FuzzParseHeader -fuzztime 10m ./internal/safetensors.
fuzz ./internal/safetensors FuzzParseHeader 6s
for target in $(go test -list 'Fuzz.*' ./data/format 2>/dev/null | grep ^Fuzz); do fuzz ./data/format "$target" 3s; done
for target in $(go test -list 'Fuzz.*' ./data/format/parquet 2>/dev/null | grep ^Fuzz); do fuzz ./data/format/parquet "$target" 3s; done
for target in $(go test -list 'Fuzz.*' ./data/tokenizer 2>/dev/null | grep ^Fuzz); do fuzz ./data/tokenizer "$target" 3s; done
for target in $(go test -list 'Fuzz.*' ./data/chat 2>/dev/null | grep ^Fuzz); do fuzz ./data/chat "$target" 3s; done
for target in $(go test -list 'Fuzz.*' ./export/gguf 2>/dev/null | grep ^Fuzz); do fuzz ./export/gguf "$target" 3s; done

if [ -n "$arm64_pid" ]; then
  rc=0
  wait "$arm64_pid" || rc=$?
  stage "arm64 kernels under qemu-user (ran beside the fuzz runs)"
  cat "$arm64_log"
  rm -f "$arm64_log"
  [ "$rc" -eq 0 ] || { echo "arm64 kernels under qemu-user failed"; exit 1; }
fi

echo "== suite wall time: $(( $(date +%s) - start )) s"
