#!/usr/bin/env bash
# Runs the CPU DoRA comparison of bench/README.md: ftune's LoRA and DoRA
# training steps (lorabench -dora, -dropout), each with lora_dropout 0 and
# 0.05, against transformers + PEFT with the same LoraConfig
# (torch_cpu_peft.py: use_dora, lora_dropout), float32, tiny-base 8 x 256,
# 1 and 2 threads, sides interleaved, ROUNDS times (default 2), one process
# per run (each peak RSS its own); the table keeps each configuration's
# best run. DoRA's cost is the ratio of a variant's row to the LoRA row of
# the same side.
#
# Usage: [TORCH_PYTHON=CMD] bench/cpu_dora.sh [ROUNDS] [RESULTS.jsonl]
# The PyTorch side needs transformers and PEFT: on a development machine
# TORCH_PYTHON="bash scripts/hf-root.sh run python3" (the default here; as
# root, see that script).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=${2:-$tmp/results.jsonl}
: >"$results"
go build -o "$tmp/lorabench" ./internal/cmd/lorabench
torch=${TORCH_PYTHON:-bash scripts/hf-root.sh run python3}
for r in $(seq "$rounds"); do
	for variant in lora dora; do
		for p in 0 0.05; do
			for th in 1 2; do
				echo "# round $r $variant dropout $p threads $th $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)" >&2
				flag=() pyflag=()
				if [ "$variant" = dora ]; then flag=(-dora) pyflag=(--dora); fi
				"$tmp/lorabench" -shape tiny-base -threads "$th" -dropout "$p" "${flag[@]}" >>"$results"
				# OPENBLAS_NUM_THREADS / OMP_NUM_THREADS: see cpu_lora.sh
				# shellcheck disable=SC2086 # TORCH_PYTHON is a command line
				$torch -c 'import os, sys; os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = sys.argv[1]; sys.argv = ["torch_cpu_peft.py", "--shape", "tiny-base", "--threads", sys.argv[1], "--dropout", sys.argv[2]] + sys.argv[3:]; exec(open("bench/torch_cpu_peft.py").read())' "$th" "$p" "${pyflag[@]}" 2>/dev/null | grep '^{' >>"$results"
			done
		done
	done
done
python3 bench/cpu_lora_table.py "$results"
