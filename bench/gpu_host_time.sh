#!/usr/bin/env bash
# The host's side of a GPU LoRA step at issue 10's shapes, measured without
# a GPU: gpubench built for the PTX simulator (-tags cudasim) with
# -host-only checks and queues every kernel, memset and copy but runs none,
# so a step's time is what the host needs to queue it (autograd, the
# backend, the allocator, the collections it forces), and the caching
# allocator's peak is the one a GPU run reports. Every shape runs the
# trainer ftune train runs (train.Trainer, device AdamW), on 80 GiB of
# simulated memory (an H100's); the long-context row under a 24 GiB cap.
#
# What it leaves out: the driver's own cost per call (a real cuLaunchKernel
# takes a few microseconds more than the simulator's), and the CUDA
# context's memory. Results are garbage by design (no kernel runs), so the
# collapse guard is lifted for these runs.
#
# Usage: bench/gpu_host_time.sh [RESULTS.jsonl] [SHAPES]
# SHAPES default "smollm2-135m llama-3.2-1b llama-3-8b llama-3.1-8b-maxctx";
# GPUBENCH_MAXCTX_SEQ sets the long-context row's tokens (default 81920).
# The Llama-3-8B rows write a 16 GB random-weight folder once, under the
# system's temp folder, and need about 21 GB of memory to load it.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=${1:-$tmp/results.jsonl}
shapes=${2:-smollm2-135m llama-3.2-1b llama-3-8b llama-3.1-8b-maxctx}
: >"$results"
go build -tags cudasim -o "$tmp/gpubench" ./bench/cmd/gpubench
export FTUNE_CUDASIM_MEMORY=85899345920
run() { "$tmp/gpubench" step -host-only "$@" 2> >(grep -v "cuBLASLt unavailable" >&2) | tee -a "$results"; }
for s in $shapes; do
	case "$s" in
	smollm2-135m | llama-3.2-1b)
		run -shape "$s" -warmup 2 -steps 5
		run -shape "$s" -ckpt -warmup 2 -steps 5
		;;
	llama-3-8b) run -shape "$s" -nf4 -ckpt -warmup 2 -steps 5 ;;
	llama-3.1-8b-maxctx)
		# As scripts/gpu-bench.sh runs it on a GPU.
		run -shape "$s" -nf4 -ckpt -offload -mlp-chunk 4096 -rank 32 -seq "${GPUBENCH_MAXCTX_SEQ:-81920}" -max-device-memory-gib 24 -warmup 1 -steps 2
		;;
	*) echo "gpu_host_time: unknown shape $s" >&2; exit 2 ;;
	esac
done
"$tmp/gpubench" rows -ftune "$results" -o "$tmp/rows.jsonl"
