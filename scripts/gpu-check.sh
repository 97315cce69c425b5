#!/bin/bash
# gpu-check.sh: prove ftune's CUDA kernels on a GPU machine in one call.
#
#   scripts/gpu-check.sh build    here (no GPU needed): cross-build the
#                                 kernels/cuda test binary and the benchmark
#                                 with CGO_ENABLED=0 into .gpucheck/ (ignored
#                                 by git; carry it to the device).
#   scripts/gpu-check.sh device   on the GPU machine, from the repo root: run
#                                 every CUDA test (none may skip), the tests
#                                 again under compute-sanitizer memcheck and
#                                 racecheck when it is installed, measure the
#                                 device's ceilings with PyTorch when present,
#                                 and run the benchmark. Tables and logs go to
#                                 $OUT (default ./gpucheck-out): at most 8 files.
#                                 After the kernel tests it runs the tensor
#                                 backend's tests (tensor/cudabackend: the shared
#                                 conformance suite and its own checks) and
#                                 TestParityCUDA* (parity/: fixtures, bf16, Gemma), logged together in
#                                 $OUT/backend.log.
#
# Environment for the device step: GPUCHECK_SKIP_BENCH=1 skips the PyTorch
# ceilings and the benchmark; GPUCHECK_SAN_TOOLS lists the compute-sanitizer
# tools to run (default "memcheck racecheck"; empty: none); SAN_TIMEOUT is
# each sanitizer run's limit in seconds; SAN_SEL overrides the kernel tests
# run under it; GPUCHECK_SAN_BACKEND=1 also runs tensor/cuda's conformance
# suite under memcheck.
#
# Device budget: the whole device step is meant to finish in under 6 minutes;
# steps run in order of importance (tests, ceilings, benchmark, sanitizers),
# each under its own timeout, so a slow one cannot take the others' time.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/carry.sh
. scripts/sanitize.sh
BIN=.gpucheck

build() {
	set -e
	mkdir -p "$BIN"
	grep -qx "/$BIN/" .git/info/exclude 2>/dev/null || echo "/$BIN/" >>.git/info/exclude
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go test -c -ldflags="-s -w" -o "$BIN/cuda.test" ./kernels/cuda
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -ldflags="-s -w" -o "$BIN/cudabench" ./internal/cmd/cudabench
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go test -c -ldflags="-s -w" -o "$BIN/tensorcuda.test" ./tensor/cudabackend
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go test -c -tags devicecarry -ldflags="-s -w" -o "$BIN/parity.test" ./parity
	# Test binaries are stripped (-s -w: no symbol table or DWARF; panics
	# still name functions) and packed (scripts/carry.sh) so the carried
	# folder fits beside the working tree in the device tool's 64 MiB.
	pack_bins "$BIN" cuda.test cudabench tensorcuda.test parity.test
	ls -la "$BIN"
	echo "device command: bash scripts/gpu-check.sh device   (carry: $BIN)"
}

device() {
	OUT=${OUT:-$PWD/gpucheck-out}
	mkdir -p "$OUT"
	unpack_bins "$BIN" || return 1
	local t0=$SECONDS status=0
	{
		date -u
		nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1
		nvidia-smi 2>&1 | sed -n 3p
	} >"$OUT/env.txt"
	cat "$OUT/env.txt"
	local test="$PWD/$BIN/cuda.test"
	export FTUNE_CUDA_REPORT="$OUT/conformance.tsv"
	rm -f "$FTUNE_CUDA_REPORT"

	echo "== tests"
	# One process per top-level test: a panic in one cannot hide the others.
	local rc=0 name
	: >"$OUT/tests.log"
	for name in $(cd kernels/cuda && "$test" -test.list '.*'); do
		(cd kernels/cuda && timeout 90 "$test" -test.run "^$name\$" -test.v -test.count=1 -test.timeout=80s) >>"$OUT/tests.log" 2>&1 || rc=1
	done
	grep -E '^(--- |=== RUN|ok|FAIL|PASS|panic)' "$OUT/tests.log" | grep -v '=== RUN' | grep -E '^--- (FAIL|SKIP)|^(ok|FAIL|PASS|panic)' | head -40
	echo "tests rc=$rc, $(grep -c '^--- PASS' "$OUT/tests.log") passed, $(grep -c -- '--- FAIL' "$OUT/tests.log") failed, $(grep -c -- '--- SKIP' "$OUT/tests.log") skipped ($((SECONDS - t0)) s)"
	if [ $rc -ne 0 ]; then
		status=1
		grep -m 40 -E 'want|outside tolerance|NaN|panic|rror' "$OUT/tests.log"
	fi
	grep -q -- '--- SKIP' "$OUT/tests.log" && { echo "FAIL: a CUDA test skipped on the GPU machine"; status=1; }
	unset FTUNE_CUDA_REPORT

	# Conformance table: the worst row per kernel family.
	awk -F'\t' 'BEGIN { print "| check | n | max abs err | max rel err | worst err/tol | tol | result |"; print "| --- | ---: | ---: | ---: | ---: | --- | --- |" }
		{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$OUT/conformance.tsv" >"$OUT/conformance.md" 2>/dev/null
	{
		echo "| kernel | checks | failed | max abs err | max rel err | worst err/tol | tol of worst |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
		awk -F'\t' '{ k=$1; sub(/\/.*/, "", k); if (!(k in w) || $5+0 > w[k]+0) { w[k]=$5; a[k]=$3; r[k]=$4; t[k]=$6 } n[k]++; if ($7 != "PASS") f[k]++ }
			END { for (k in w) printf "| %s | %d | %d | %s | %s | %s | %s |\n", k, n[k], f[k]+0, a[k], r[k], w[k], t[k] }' "$OUT/conformance.tsv" | sort
	} >"$OUT/conformance-summary.md"
	echo "== conformance (worst check per kernel)"
	cat "$OUT/conformance-summary.md"

	echo "== tensor backend (tensor/cudabackend) and TestParityCUDA"
	local brc=0
	: >"$OUT/backend.log"
	for name in $(cd tensor/cudabackend && "../../$BIN/tensorcuda.test" -test.list '.*'); do
		(cd tensor/cudabackend && timeout 150 "../../$BIN/tensorcuda.test" -test.run "^$name\$" -test.v -test.count=1 -test.timeout=140s) >>"$OUT/backend.log" 2>&1 || brc=1
	done
	(cd parity && timeout 150 "../$BIN/parity.test" -test.run '^(TestParityCUDA|TestDPOParityCUDA)' -test.v -test.count=1 -test.timeout=140s) >>"$OUT/backend.log" 2>&1 || brc=1
	grep -E '^\s*--- (FAIL|SKIP)|^(FAIL|panic)|worst relative error|relative error .* >|attention .* (fast|backward)|device allocator' "$OUT/backend.log" | head -60
	echo "backend rc=$brc, $(grep -c -- '--- PASS' "$OUT/backend.log") tests and subtests passed, $(grep -c -- '--- FAIL' "$OUT/backend.log") failed, $(grep -c -- '--- SKIP' "$OUT/backend.log") skipped ($((SECONDS - t0)) s)"
	[ $brc -eq 0 ] || status=1
	grep -q -- '--- SKIP: TestParityCUDA\|--- SKIP: TestConformance' "$OUT/backend.log" && { echo "FAIL: a backend test skipped on the GPU machine"; status=1; }

	if [ "${GPUCHECK_SKIP_BENCH:-0}" = 1 ]; then
		echo "== ceilings and benchmark skipped (GPUCHECK_SKIP_BENCH=1)"
	else
	echo "== ceilings"
	local ceil
	ceil=$(timeout 45 python3 - <<'PY' 2>>"$OUT/env.txt"
import torch
dev = "cuda"
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
x = torch.randn(1 << 28, device=dev)
y = torch.empty_like(x)
def t(f, n=10):
    for _ in range(3): f()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(); s.record()
    for _ in range(n): f()
    e.record(); e.synchronize()
    return s.elapsed_time(e) / n
ms = t(lambda: a @ b)
cms = t(lambda: y.copy_(x))
print(f"{2 * 8192**3 / ms / 1e9:.1f} {2 * x.numel() * 4 / cms / 1e6:.1f}")
PY
)
	echo "PyTorch: bf16 8192^3 matmul TFLOP/s, DtoD copy GB/s: ${ceil:-unavailable}"
	local gf=0 cf=0
	if [ -n "$ceil" ]; then read -r gf cf <<<"$ceil"; fi

	echo "== benchmark"
	timeout 90 "$BIN/cudabench" -gemm-ceiling "$gf" -copy-ceiling "$cf" -o "$OUT/bench.md" 2>>"$OUT/tests.log" || status=1
	fi
	echo "== compute-sanitizer"
	SAN_TOOLS=${GPUCHECK_SAN_TOOLS-memcheck racecheck} sanitize "$BIN/cuda.test" "$OUT/sanitizer.log" || status=1
	if [ "${GPUCHECK_SAN_BACKEND:-0}" = 1 ]; then
		# The tensor backend's conformance suite under memcheck: catches an
		# offset or size the backend computes wrongly for a kernel.
		local cs
		cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
		(cd tensor/cudabackend && timeout "${SAN_TIMEOUT:-80}" "$cs" --tool memcheck --error-exitcode 3 --print-limit 20 "../../$BIN/tensorcuda.test" -test.run '^TestConformance$' -test.count=1) >"$OUT/san-backend.tmp" 2>&1
		local src=$?
		echo "memcheck tensor/cudabackend TestConformance rc=$src: $(grep -E 'ERROR SUMMARY' "$OUT/san-backend.tmp" | tail -1) ($((SECONDS - t0)) s)"
		grep -E '^--- FAIL|=========' "$OUT/san-backend.tmp" | head -20
		cat "$OUT/san-backend.tmp" >>"$OUT/sanitizer.log"
		rm -f "$OUT/san-backend.tmp"
		[ $src -eq 0 ] || status=1
	fi

	echo "gpu-check done in $((SECONDS - t0)) s, status $status"
	return $status
}

case "${1:-}" in
build) build ;;
device) device ;;
*) echo "usage: $0 build|device" >&2; exit 2 ;;
esac
