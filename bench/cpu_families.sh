#!/usr/bin/env bash
# Times ftune's CPU LoRA training step (r=16 on every linear layer, bf16
# frozen weights computed in float32) for each supported model family at
# one shape, Llama being the baseline: lorabench -family F writes a
# random-weight folder of family F at the shape (once, outside any timing,
# in the system's temp folder) and times 1 warm-up and STEPS timed steps.
# The families run one after another, ROUNDS times (default 2), one process
# per run so that each peak RSS is its own; the table gives each family's
# min and median over all its timed steps and its ratio to Llama's.
#
# Usage: bench/cpu_families.sh [ROUNDS] [THREADS] [SHAPE] [STEPS] [RESULTS.jsonl]
# (defaults 2, "2", smollm2-135m, 3; THREADS may be a list: "2 1").
# python3 bench/cpu_families_table.py A.jsonl ... makes the table again.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
threads=${2:-2}
shape=${3:-smollm2-135m}
steps=${4:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=${5:-$tmp/results.jsonl}
: >"$results"
go build -o "$tmp/lorabench" ./internal/cmd/lorabench
families="llama qwen3 gemma2 gemma3 phi3 phi4mini"
for f in $families; do # write every folder before the first timed run
	"$tmp/lorabench" -shape "$shape" -family "$f" -prepare >/dev/null
done
for th in $threads; do
	for r in $(seq "$rounds"); do
		for f in $families; do
			echo "# threads $th round $r $f $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)" >&2
			"$tmp/lorabench" -shape "$shape" -family "$f" -threads "$th" -warmup 1 -steps "$steps" >>"$results"
		done
	done
done
python3 bench/cpu_families_table.py "$results"
