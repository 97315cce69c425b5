#!/bin/bash
# gpu-bench.sh: issue 10's one prepared script for a GPU session: the CUDA
# tests, a per-op profile of one step per shape, and the benchmark table of
# ftune against the anchor (PyTorch + PEFT, bench/peft_lora_bench.py, a copy
# of ../shared/anchors/peft_lora_bench.py with two switches, see its header)
# measured in the same call on the same GPU.
#
#   scripts/gpu-bench.sh build    here, no GPU: cross-build (CGO_ENABLED=0,
#                                 test binaries with go test -c, stripped and
#                                 packed, scripts/carry.sh) into .gpubench/ (ignored by git)
#   scripts/gpu-bench.sh dry      here, no GPU: build, then check the half
#                                 that needs none: the binaries run and take
#                                 their arguments (a bad -gemm-provider is
#                                 refused), the measured trainer step runs on
#                                 the CPU backend (gpubench step -cpu,
#                                 tiny-base) and names its optimizer path,
#                                 and the rows writer turns a fake anchor and
#                                 fake ftune rows into the jsonl and the table
#   scripts/gpu-bench.sh device   on the GPU machine, from the repo root
#
# The device session (the `run` tool), after `scripts/gpu-bench.sh build` here:
#
#   run  command:   bash scripts/gpu-bench.sh session
#        carry:     [".gpubench"]
#        timeout_s: 540
#
# (session = make-fixtures.sh device beside the device step, then the
# sanitizers and parity on the new fixtures, packed to fit what a call
# brings back; see session() below.)
#
# `; bash scripts/make-fixtures.sh device` after it in the same command also
# writes issue 13's transformers/PEFT fixtures and checks them with the
# parity binary this carry holds (about a minute more).
#
# Budget: a session has 15 minutes of device time, starts included, so the
# device step is sized to ~5 minutes with room for one rerun; each part has
# its own timeout (the caps add up to more: they stop a hang, not a normal
# run): tests ≤ 160 + 50 s, parity on the device (TestParityCUDA*) ≤ 120 s, the GEMM table ≤ 90 s and the three wgmma tables ≤ 40 s each, each ftune row ≤ 120 s (seven
# by default: smollm2-135m with the GEMM provider auto, ftune, ftune with
# the LoRA products apart, SIMT attention, ftune on the sm_90a wgmma
# kernels with cp.async and with warp-specialised TMA loads, and
# llama-3.2-1b, which first
# writes a 2.5 GB random-weight model), the anchor
# ≤ 200 s. The main rows (smollm2 auto, llama-3.2-1b) and the anchor come
# before the five smollm2 variants, so that a run stopped by its limit
# (session: 330 s) still has the table's ratios. Bigger shapes are opt-in (GPUBENCH_SHAPES, below): llama-3-8b
# writes a 16 GB random-weight model first, which alone takes minutes.
#
# What a row measures: gpubench step times the steps of the trainer ftune
# train runs (train.Trainer: the device AdamW with the gradient norm and
# clipping, activations released by the tape, the loss read with the norm),
# on the device opened as the CLI opens it (recipe.OpenDeviceFor, with
# -gemm-provider); each row records the provider and the optimizer path.
#
# Environment (device step):
#   GPUBENCH_SHAPES   shapes to run, default "smollm2-135m llama-3.2-1b";
#                     also llama-3-8b (NF4, checkpointed) and
#                     llama-3.1-8b-maxctx (NF4, r=32, batch 1, checkpoints
#                     offloaded to host memory, the MLP in 4096-token
#                     chunks, under a 24 GiB cap,
#                     GPUBENCH_MAXCTX_SEQ tokens, default 81920)
#   GPUBENCH_SKIP_TESTS=1     skip the CUDA tests
#   GPUBENCH_SKIP_ANCHOR=1    skip PyTorch + PEFT (the table then has no ratios)
#   GPUBENCH_SKIP_GEMM=1      skip the GEMM table (ftune's bf16 GEMM against
#                             cuBLASLt at the step shapes, cudabench -gemm-table)
#   FTUNE_CUBLASLT_LIBRARY    the libcublasLt.so.* to use; unset, the device
#                             step points it at the one in the NVIDIA pip
#                             wheels beside torch (nvidia/cu13/lib or
#                             nvidia/cublas/lib), when there is one
#   GPUBENCH_CEILINGS=1       also let the anchor measure copy bandwidth and
#                             the bf16 GEMM rate at this issue's GEMM shapes
#                             (cuBLAS through torch; ~40 s more)
#
# Output under $OUT (default ./gpubench-out): env.txt, tests.log, one
# profile-<shape>.md per shape and profile-smollm2-135m-ftune-gemm.md (one
# trainer step with a device synchronization after every backend call: the
# per-op-family table, the device optimizer its own row), gemm-table.md (ftune against
# cuBLASLt per GEMM shape), ftune.jsonl and ftune.err
# (gpubench's rows and errors), anchor.log and gpubench.json (the anchor's
# raw output), gpu-lora-<gpu>-<date>.jsonl (the rows to commit under
# bench/results/) and table.md, printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/carry.sh
. scripts/sanitize.sh
BIN=.gpubench
BINS="cuda.test tensorcuda.test gpubench cudabench parity.test"

build() {
	set -e
	mkdir -p "$BIN"
	local exclude
	exclude=$(git rev-parse --git-path info/exclude)
	grep -qx "/$BIN/" "$exclude" 2>/dev/null || echo "/$BIN/" >>"$exclude"
	export GOOS=linux GOARCH=amd64 CGO_ENABLED=0
	go test -c -ldflags="-s -w" -o "$BIN/cuda.test" ./kernels/cuda
	go test -c -ldflags="-s -w" -o "$BIN/tensorcuda.test" ./tensor/cudabackend
	go build -ldflags="-s -w" -o "$BIN/gpubench" ./bench/cmd/gpubench
	go build -ldflags="-s -w" -o "$BIN/cudabench" ./internal/cmd/cudabench
	go test -c -tags devicecarry -ldflags="-s -w" -o "$BIN/parity.test" ./parity
	pack_bins "$BIN" $BINS
	local sent
	sent=$(($(git ls-files -co --exclude-standard -z | du --files0-from=- -cb | tail -1 | cut -f1) + $(du -sb "$BIN" | cut -f1)))
	echo "the working tree with $BIN: $sent bytes (the device tool sends at most $((64 << 20)))"
	[ "$sent" -le $((64 << 20)) ] || { echo "gpu-bench: too large to carry" >&2; return 1; }
	ls -la "$BIN"
	du -sh "$BIN"
}

unpack() {
	local f
	unpack_bins "$BIN" || return 1
	for f in $BINS; do
		[ -x "$BIN/$f" ] || { echo "gpu-bench: $BIN/$f missing: run scripts/gpu-bench.sh build here and carry $BIN" >&2; return 1; }
	done
}

# gpu_slug turns nvidia-smi's name into the file-name part: "NVIDIA H200" -> h200.
gpu_slug() {
	echo "$1" | sed -e 's/^NVIDIA //' -e 's/ .*//' | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9-'
}

# ftune_step SHAPE ARGS...: one gpubench row into ftune.jsonl, its profile
# beside it; a failure is logged, never fatal to the other shapes.
ftune_step() {
	local shape=$1 t0=$SECONDS
	shift
	timeout "${STEP_TIMEOUT:-120}" "$BIN/gpubench" step -shape "$shape" -cache /tmp -warmup 1 -steps 3 \
		-profile "$OUT/profile-$shape$PROFILE_SUFFIX.md" "$@" >>"$OUT/ftune.jsonl" 2>>"$OUT/ftune.err"
	echo "ftune $shape $*: exit $? in $((SECONDS - t0)) s"
}

device() {
	OUT=${OUT:-$PWD/gpubench-out}
	mkdir -p "$OUT"
	unpack || return 1
	command -v nvidia-smi >/dev/null || { echo "gpu-bench: no nvidia-smi: not a GPU machine" >&2; return 1; }
	local t0=$SECONDS status=0 name slug
	name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
	slug=$(gpu_slug "$name")
	{
		date -u
		nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv 2>&1
		python3 -c 'import torch, peft, transformers; print("torch", torch.__version__, "peft", peft.__version__, "transformers", transformers.__version__)' 2>&1
	} >"$OUT/env.txt"
	# cuBLASLt (the second GEMM provider): unless named already, the one of
	# the NVIDIA pip wheels that torch runs on, found through Python's own
	# import path (ftune's built-in search covers the usual site-packages
	# folders only).
	if [ -z "${FTUNE_CUBLASLT_LIBRARY:-}" ]; then
		local lt
		lt=$(python3 -c 'import nvidia, os
for d in nvidia.__path__:
    for f in ("cu13/lib/libcublasLt.so.13", "cublas/lib/libcublasLt.so.12"):
        if os.path.exists(os.path.join(d, f)): print(os.path.join(d, f)); raise SystemExit' 2>/dev/null)
		[ -n "$lt" ] && export FTUNE_CUBLASLT_LIBRARY=$lt
	fi
	echo "FTUNE_CUBLASLT_LIBRARY=${FTUNE_CUBLASLT_LIBRARY:-(unset: ftune searches the system loader and the usual folders)}" >>"$OUT/env.txt"
	cat "$OUT/env.txt"

	if [ "${GPUBENCH_SKIP_TESTS:-0}" != 1 ]; then
		echo "== CUDA tests (kernels/cuda, tensor/cudabackend, parity)"
		# The sm_90a wgmma kernels (never run on a GPU when written) in
		# processes of their own, after the others, the cp.async loads
		# before the TMA ones: a fault would poison the CUDA context of
		# every test after it.
		(cd kernels/cuda && timeout 150 "../../$BIN/cuda.test" -test.count=1 -test.timeout=145s -test.v -test.skip 'WGMMA') >"$OUT/tests.log" 2>&1 || status=1
		(cd kernels/cuda && timeout 30 "../../$BIN/cuda.test" -test.count=1 -test.timeout=25s -test.v -test.run 'WGMMA' -test.skip 'WGMMA/.*tma') >>"$OUT/tests.log" 2>&1 || status=1
		(cd kernels/cuda && timeout 30 "../../$BIN/cuda.test" -test.count=1 -test.timeout=25s -test.v -test.run 'WGMMA/.*tma') >>"$OUT/tests.log" 2>&1 || status=1
		(cd tensor/cudabackend && timeout 50 "../../$BIN/tensorcuda.test" -test.count=1 -test.timeout=45s -test.v -test.skip 'WGMMA') >>"$OUT/tests.log" 2>&1 || status=1
		(cd tensor/cudabackend && timeout 30 "../../$BIN/tensorcuda.test" -test.count=1 -test.timeout=25s -test.v -test.run 'WGMMA') >>"$OUT/tests.log" 2>&1 || status=1
		# Parity on the device against the committed transformers/PEFT
		# fixtures and the families' llama.cpp goldens: float32, bf16
		# operands, bf16 activations (TestParityCUDABF16*), generation, DPO (TestDPOParityCUDA).
		(cd parity && timeout 120 "../$BIN/parity.test" -test.run '^(TestParityCUDA|TestDPOParityCUDA)' -test.count=1 -test.timeout=115s -test.v) >>"$OUT/tests.log" 2>&1 || status=1
		grep -E '^--- (FAIL|SKIP)|^(FAIL|panic)' "$OUT/tests.log" | head -20
		echo "tests: $(grep -c -- '--- PASS' "$OUT/tests.log") passed, $(grep -c -- '--- FAIL' "$OUT/tests.log") failed, $(grep -c -- '--- SKIP' "$OUT/tests.log") skipped ($((SECONDS - t0)) s)"
		grep -q -- '--- SKIP' "$OUT/tests.log" && { echo "FAIL: a CUDA test skipped on the GPU machine"; status=1; }
	fi

	if [ "${GPUBENCH_SKIP_GEMM:-0}" != 1 ]; then
		echo "== GEMM table: ftune's bf16 GEMM against cuBLASLt at the step shapes"
		local g0=$SECONDS grc=0
		timeout 90 "$BIN/cudabench" -gemm-table -reps 10 -wgmma-loads "" -lt-times "$OUT/lt-times.json" -o "$OUT/gemm-table.md" >/dev/null 2>>"$OUT/gemm-table.log" || grc=$?
		[ $grc = 0 ] || { status=1; tail -3 "$OUT/gemm-table.log"; }
		echo "gemm table: exit $grc in $((SECONDS - g0)) s"
		# The sm_90a kernels' tables, a process each (a fault loses one).
		local loads wrc
		for loads in cp.async tma tma-ws; do
			g0=$SECONDS wrc=0
			timeout 40 "$BIN/cudabench" -gemm-table -reps 10 -skip-main -wgmma-loads "$loads" -lt-times "$OUT/lt-times.json" -o "$OUT/gemm-table.md" >/dev/null 2>>"$OUT/gemm-table.log" || wrc=$?
			[ $wrc = 0 ] || { status=1; tail -3 "$OUT/gemm-table.log"; }
			echo "wgmma table ($loads): exit $wrc in $((SECONDS - g0)) s"
		done
	fi

	echo "== ftune: one row and one per-op profile per shape"
	: >"$OUT/ftune.jsonl"
	local runs="" s
	for s in ${GPUBENCH_SHAPES:-smollm2-135m llama-3.2-1b}; do
		PROFILE_SUFFIX=""
		case $s in
		smollm2-135m)
			# The GEMM provider ftune train picks by default (auto: per
			# shape the faster of ftune's kernels and cuBLASLt); the
			# variants run after the anchor (below).
			ftune_step "$s" -gemm-provider auto
			runs+="smollm2-135m:8:2048:0,"
			;;
		llama-3.2-1b)
			ftune_step "$s"
			runs+="llama3.2-1b:4:2048:0,llama3.2-1b:4:2048:1,"
			;;
		llama-3-8b)
			STEP_TIMEOUT=300 ftune_step "$s" -nf4 -ckpt
			runs+="llama3-8b:2:2048:1,"
			;;
		llama-3.1-8b-maxctx)
			# The saved block inputs (32 x seq x 4096 bf16: 20 GiB at 81920
			# tokens) wait in pinned host memory (-offload), as Unsloth's
			# offloaded checkpoints do, and the MLP runs over chunks of 4096
			# tokens (-mlp-chunk): counted on these widths, 0.23 -> 0.10 MiB
			# a token at the backward's peak in bf16 (bench/results/
			# cpu-memory-2026-12-05.md).
			STEP_TIMEOUT=300 ftune_step "$s" -nf4 -ckpt -offload -mlp-chunk 4096 -rank 32 -seq "${GPUBENCH_MAXCTX_SEQ:-81920}" -max-device-memory-gib 24 -warmup 0 -steps 1
			;;
		*) echo "gpu-bench: unknown shape $s" >&2; status=1 ;;
		esac
	done
	local anchor_flag=()
	if [ "${GPUBENCH_SKIP_ANCHOR:-0}" != 1 ] && [ -n "$runs" ]; then
		echo "== anchor: PyTorch + PEFT ($runs)"
		local a0=$SECONDS ceil=1
		[ "${GPUBENCH_CEILINGS:-0}" = 1 ] && ceil=0
		ANCHOR_SKIP_CEILINGS=$ceil ANCHOR_RUNS=${runs%,} timeout 200 python3 bench/peft_lora_bench.py "$OUT" >"$OUT/anchor.log" 2>&1
		echo "anchor: exit $? in $((SECONDS - a0)) s"
		if [ -s "$OUT/gpubench.json" ]; then anchor_flag=(-anchor "$OUT/gpubench.json"); else status=1; tail -5 "$OUT/anchor.log"; fi
	fi

	# The variant rows come after the anchor, so that a run cut short by
	# its time limit still has the table's main rows and their ratios:
	# smollm2-135m on ftune's kernels alone, the same with each LoRA
	# layer's two products apart (the before/after of the fused LoRA GEMM;
	# predicted: 20 GB less traffic a step, about 7 ms at 3 TB/s, and 420
	# launches fewer) and with the SIMT attention kernels (the
	# before/after of flash attention).
	case " ${GPUBENCH_SHAPES:-smollm2-135m llama-3.2-1b} " in
	*" smollm2-135m "*)
		echo "== ftune: variant rows"
		PROFILE_SUFFIX=-ftune-gemm ftune_step smollm2-135m -gemm-provider ftune
		PROFILE_SUFFIX=-unfused-lora ftune_step smollm2-135m -gemm-provider ftune -unfused-lora
		PROFILE_SUFFIX=-simt-attention ftune_step smollm2-135m -attention-kernel simt
		# Last: the sm_90a kernels (the plain nt product and the fused
		# LoRA forward on wgmma) against the -ftune-gemm row above; a
		# kernel fault here loses this row alone.
		PROFILE_SUFFIX=-wgmma ftune_step smollm2-135m -gemm-provider ftune -wgmma
		PROFILE_SUFFIX=-wgmma-tma-ws ftune_step smollm2-135m -gemm-provider ftune -wgmma -wgmma-loads tma-ws
		;;
	esac
	tail -5 "$OUT/ftune.err" 2>/dev/null

	local rows="$OUT/gpu-lora-$slug-$(date -u +%Y-%m-%d).jsonl"
	[ -s "$OUT/gemm-table.md" ] && { echo; cat "$OUT/gemm-table.md"; }
	for s in "$OUT"/profile-*.md; do
		[ -e "$s" ] && { echo; cat "$s"; }
	done
	echo
	echo "== benchmark table ($name), rows in $(basename "$rows")"
	"$BIN/gpubench" rows "${anchor_flag[@]}" -ftune "$OUT/ftune.jsonl" -o "$rows" | tee "$OUT/table.md" || status=1
	echo "gpu-bench done in $((SECONDS - t0)) s, status $status"
	return $status
}

# dry: everything that runs without a GPU.
dry() {
	build || return 1
	unpack || return 1
	local tmp rc=0
	tmp=$(mktemp -d)
	"$BIN/gpubench" step -shape nope >/dev/null 2>"$tmp/err" && rc=1
	grep -q 'unknown shape "nope"' "$tmp/err" || { echo "dry: gpubench step does not refuse an unknown shape: $(cat "$tmp/err")"; rc=1; }
	"$BIN/gpubench" step -gemm-provider cublas >/dev/null 2>"$tmp/err" && rc=1
	grep -q 'gemm provider "cublas"' "$tmp/err" || { echo "dry: gpubench step does not refuse an unknown GEMM provider: $(cat "$tmp/err")"; rc=1; }
	"$BIN/gpubench" step -shape smollm2-135m -steps 1 -warmup 0 -cache "$tmp" >/dev/null 2>"$tmp/err" && rc=1
	grep -q 'cuda backend' "$tmp/err" || { echo "dry: without a GPU gpubench step should say why: $(cat "$tmp/err")"; rc=1; }
	(cd kernels/cuda && "../../$BIN/cuda.test" -test.run 'TestAllocatorLimit' -test.count=1) >"$tmp/t" 2>&1 || { cat "$tmp/t"; rc=1; }
	(cd parity && "../$BIN/parity.test" -test.run '^TestParityCUDA$' -test.count=1 -test.v) >"$tmp/t" 2>&1 || { cat "$tmp/t"; rc=1; }
	grep -q -- '--- SKIP: TestParityCUDA ' "$tmp/t" || { echo "dry: without a GPU TestParityCUDA should skip: $(cat "$tmp/t")"; rc=1; }
	"$BIN/cudabench" -gemm-table >"$tmp/gemm" 2>&1 && rc=1
	grep -q 'cudabench: no GPU' "$tmp/gemm" || { echo "dry: cudabench -gemm-table should say why without a GPU: $(cat "$tmp/gemm")"; rc=1; }
	# The whole measured step on the CPU backend at a tiny size: model
	# written, loaded, LoRA attached, stepped, profiled, its row printed.
	"$BIN/gpubench" step -cpu -shape tiny-base -batch 1 -seq 16 -warmup 1 -steps 1 -cache "$tmp" -profile "$tmp/profile.md" >"$tmp/row" 2>&1 || { cat "$tmp/row"; rc=1; }
	grep -q '"side":"ftune"' "$tmp/row" && grep -q '"optimizer":"host: ' "$tmp/row" && grep -q '| gemm |' "$tmp/profile.md" &&
		grep -q '| optimizer (host) |' "$tmp/profile.md" || { echo "dry: gpubench step -cpu gave no row, optimizer path or profile: $(cat "$tmp/row")"; rc=1; }
	echo '{"peft_lora_bf16_sdpa": {"smollm2-135m_b8_t2048_ckpt0": {"step_s": 0.25, "tokens_per_s": 65400.0, "peak_mem_gib": 28.4}}}' >"$tmp/gpubench.json"
	echo '{"shape":"smollm2-135m","side":"ftune","batch":8,"seq":2048,"variant":"bf16","tokens_per_s":32700,"peak_gib":14.2,"step_s":0.5,"gemm_provider":"auto","optimizer":"device: fused AdamW"}' >"$tmp/ftune.jsonl"
	"$BIN/gpubench" rows -anchor "$tmp/gpubench.json" -ftune "$tmp/ftune.jsonl" -o "$tmp/gpu-lora-$(gpu_slug 'NVIDIA H200')-dry.jsonl" >"$tmp/table.md" || rc=1
	cat "$tmp/table.md"
	grep -q '| smollm2-135m | 8 × 2048 | ftune | bf16 | 32700 | 14.20 | 0.50× | 0.50× |' "$tmp/table.md" || { echo "dry: ratio row missing"; rc=1; }
	[ "$(wc -l <"$tmp/gpu-lora-h200-dry.jsonl")" = 2 ] || { echo "dry: want 2 rows in the jsonl"; rc=1; }
	grep -q '"gemm_provider":"auto","optimizer":"device: fused AdamW"' "$tmp/gpu-lora-h200-dry.jsonl" || { echo "dry: the rows lost the GEMM provider or the optimizer path"; rc=1; }
	cat "$tmp/gpu-lora-h200-dry.jsonl"
	bash -n "$0" || rc=1
	rm -rf "$tmp"
	# Packed again, ready to carry.
	pack_bins "$BIN" $BINS || rc=1
	echo "dry run: $([ $rc = 0 ] && echo ok || echo FAILED)"
	return $rc
}

# session: the whole device call of a session that holds a GPU, sized to
# about 7 minutes (timeout_s 540) so that the 15-minute budget leaves room
# for a rerun, and shaped for what a call brings back (at most 8 files
# under $OUT):
#   1. the transformers/PEFT fixtures regenerated with the machine's
#      transformers 5.17 and PEFT 0.21 (make-fixtures.sh device, started
#      first and in the background: it runs on the CPU, 6 threads, while
#      the CUDA tests run, and is done before anything is timed; it starts
#      before the parity binary is unpacked, so it only generates and packs:
#      fixtures.tar.gz.NN and make-fixtures.log). The committed folders
#      (transformers 5.12.1 for the issue-13 families) came from a
#      development machine (make-fixtures.sh here); `make-fixtures.sh
#      install DIR` here compares the two;
#   2. this script's device step (tests, GEMM table, profiles, ftune and
#      the anchor), its files in one gpubench.tgz;
#   3. the kernel tests under compute-sanitizer memcheck and racecheck
#      (scripts/sanitize.sh; sanitizer.log in gpubench.tgz);
#   4. TestParityCUDA on the new fixture folders (parity-new.log in it).
# The summary is printed last, where the call's output tail shows it.
session() {
	local R=${OUT:-$PWD/gpubench-out} work=/tmp/gpubench-session t0=$SECONDS fx
	mkdir -p "$R" "$work/out"
	echo "== fixtures (background)"
	OUT=$R OMP_NUM_THREADS=6 MAKE_FIXTURES_NO_PARITY=1 timeout "${SESSION_FIXTURES_TIMEOUT:-240}" bash scripts/make-fixtures.sh device >"$work/out/make-fixtures.stdout" 2>&1 &
	fx=$!
	echo "== device step"
	OUT=$work/out timeout -s INT "${SESSION_BENCH_TIMEOUT:-330}" bash "$0" device >"$work/out/device.stdout" 2>&1
	echo "device step: exit $? in $((SECONDS - t0)) s"
	wait "$fx"
	echo "fixtures: exit $? (done by $((SECONDS - t0)) s)"
	echo "== compute-sanitizer"
	SAN_TIMEOUT=${SESSION_SAN_TIMEOUT:-50} sanitize "$BIN/cuda.test" "$work/out/sanitizer.log"
	if [ -x "$BIN/parity.test" ] && ls "$R"/fixtures.tar.gz.* >/dev/null 2>&1; then
		echo "== TestParityCUDA on the new fixture folders"
		mkdir -p "$work/fx"
		cat "$R"/fixtures.tar.gz.* | tar -xzf - -C "$work/fx"
		(cd parity && FTUNE_FIXTURES="$work/fx/fixtures" timeout "${SESSION_PARITY_TIMEOUT:-60}" "../$BIN/parity.test" -test.run '^TestParityCUDA$' -test.v -test.count=1) >"$work/out/parity-new.log" 2>&1
		echo "TestParityCUDA (new folders): exit $? in $((SECONDS - t0)) s"
	fi
	tar -C "$work" -czf "$R/gpubench.tgz" out
	echo "== summary"
	grep -E '^(make_fixtures.py rc|TestParity.* rc|make-fixtures device done)' "$R/make-fixtures.log" 2>/dev/null | head
	grep -E '^(  File|Traceback|[A-Za-z]*Error)' "$R/make-fixtures.log" 2>/dev/null | head -20
	grep -E -- '^--- (FAIL|SKIP)|^\s+--- FAIL|^(FAIL|panic)|^tests:|exit [0-9]+ in' "$work/out/device.stdout" 2>/dev/null | head -40
	grep -E -- '--- (FAIL|SKIP)|relative error .* >' "$work/out/parity-new.log" 2>/dev/null | grep -v 'fixture has no' | head -30
	cat "$work/out/table.md" 2>/dev/null
	grep -E '^gpu-bench done' "$work/out/device.stdout"
	ls -la "$R"
	echo "session done in $((SECONDS - t0)) s"
}

case "${1:-}" in
build) build ;;
device) device ;;
dry) dry ;;
session) session ;;
*) echo "usage: $0 build|dry|device|session" >&2; exit 2 ;;
esac
