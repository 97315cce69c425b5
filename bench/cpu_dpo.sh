#!/usr/bin/env bash
# Runs the CPU DPO comparison of bench/README.md: ftune's DPO step
# (lorabench -dpo: the reference's forward without gradients, the policy's
# forward and backward, AdamW; recycling its memory through the CPU pool,
# as the trainer does, and left to Go's collector) against what a user runs today,
# transformers + PEFT with TRL's DPO loss (torch_cpu_dpo.py), float32, on
# tiny-base (4 pairs = 8 rows x 256) and the SmolLM2-135M shape (1 pair =
# 2 rows x 512), 1 and 2 threads, sides interleaved, ROUNDS times (default
# 3), one process per run (each peak RSS its own); the table keeps each
# configuration's best run.
#
# Usage: [TORCH_PYTHON=CMD] bench/cpu_dpo.sh [ROUNDS] [RESULTS.jsonl]
# The PyTorch side needs transformers and PEFT: on a development machine
# TORCH_PYTHON="bash scripts/hf-root.sh run python3" (the default here; as
# root, see that script).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=${2:-$tmp/results.jsonl}
: >"$results"
go build -o "$tmp/lorabench" ./internal/cmd/lorabench
torch=${TORCH_PYTHON:-bash scripts/hf-root.sh run python3}
for r in $(seq "$rounds"); do
	for shape in tiny-base smollm2-135m; do
		for th in 1 2; do
			echo "# round $r $shape threads $th $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)" >&2
			"$tmp/lorabench" -shape "$shape" -threads "$th" -dpo >>"$results"
			"$tmp/lorabench" -shape "$shape" -threads "$th" -dpo -no-pool >>"$results"
			# OPENBLAS_NUM_THREADS / OMP_NUM_THREADS: see cpu_lora.sh
			# shellcheck disable=SC2086 # TORCH_PYTHON is a command line
			$torch -c 'import os, sys; os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = sys.argv[1]; sys.argv = ["torch_cpu_dpo.py", "--shape", sys.argv[2], "--threads", sys.argv[1]]; exec(open("bench/torch_cpu_dpo.py").read())' "$th" "$shape" 2>/dev/null | grep '^{' >>"$results"
		done
	done
done
python3 bench/cpu_lora_table.py "$results"
