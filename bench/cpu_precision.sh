#!/usr/bin/env bash
# Times `ftune train` on a random-weight model of a real shape in precision
# f32 and bf16 on the CPU (bf16: products of bf16-rounded operands on
# AVX512_BF16, tensor.CPUBF16), the two alternating ROUNDS times, each run
# STEPS optimizer steps on the bundled subject data, and prints one
# Markdown row per run: seconds per step (median of steps 2..STEPS, from
# metrics.jsonl's wall_time), tokens/s, peak RSS (/usr/bin/time) and the
# losses, which the two precisions should share to bf16 noise.
#
# Usage: bench/cpu_precision.sh SHAPE [ROUNDS] [STEPS] [-- extra ftune train flags]
#   bench/cpu_precision.sh llama-3.2-1b 2 6 -- --batch-size 1 --seq-len 512
#   bench/cpu_precision.sh llama-3-8b 1 3 -- --memory-lean --batch-size 1 --seq-len 128
# The model folder is written once under $FTUNE_BENCH_MODELS (default
# $TMPDIR/ftune-models) by bench/cmd/randommodel (2.3 GiB for 1B, 14 GiB
# for 8B).
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:?shape: llama-3.2-1b or llama-3-8b}
rounds=${2:-2}
steps=${3:-6}
shift $(($# < 3 ? $# : 3))
if [ "${1:-}" = "--" ]; then shift; fi
models=${FTUNE_BENCH_MODELS:-${TMPDIR:-/tmp}/ftune-models}
mkdir -p "$models"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ftune" ./cmd/ftune
model=$(go run ./bench/cmd/randommodel -shape "$shape" -cache "$models")
echo "| shape | precision | round | s/step (median of 2..$steps) | tokens/s | peak RSS GiB | losses |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for r in $(seq "$rounds"); do
	for p in f32 bf16; do
		out="$tmp/runs"
		/usr/bin/time -f "%M" -o "$tmp/rss" "$tmp/ftune" train --model "$model" --precision "$p" \
			--eval-questions 0 --eval-every 0 --set training.eval.max_batches=1 --set training.log_every=1 \
			--max-steps "$steps" --output "$out" --run-name "$p-$r" "$@" >"$tmp/$p-$r.log" 2>&1 ||
			{ cat "$tmp/$p-$r.log" >&2; exit 1; }
		python3 - "$out/$p-$r/metrics.jsonl" "$(cat "$tmp/rss")" "$shape" "$p" "$r" <<'EOF'
import json, statistics, sys
path, rss_kib, shape, prec, rnd = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
train = [r for r in rows if "train/loss" in r["metrics"]]
walls = [r["wall_time"] for r in train]
dts = [b - a for a, b in zip(walls, walls[1:])]  # steps 2..N
toks = [r["metrics"]["train/tokens_per_s"] for r in train[1:]]
print("| %s | %s | %s | %.2f | %.1f | %.2f | %s |" % (shape, prec, rnd, statistics.median(dts),
      statistics.median(toks), int(rss_kib) / 2**20, ", ".join("%.4f" % r["metrics"]["train/loss"] for r in train)))
EOF
	done
done
