#!/usr/bin/env bash
# What the CPU pool (tensor.UseCPUPool: a step's released buffers handed to
# the next step) saves against leaving every step's memory to Go's
# collector (FTUNE_CPU_POOL=0, lorabench -no-pool): the main job (`ftune
# train` on the embedded defaults, 240 steps with its evaluations) and one
# LoRA step of tiny-base (8 x 256) and the SmolLM2-135M shape (1 x 512) at
# 2 threads. Sides interleaved, ROUNDS times (default 2), one process per
# run. Prints JSON lines: the main job's training seconds (its "finished
# 240 steps in" line), wall seconds, peak RSS, minor page faults and final
# validation loss (the same on both sides: the pool changes no result),
# and lorabench's own lines.
#
# Usage: bench/cpu_pool.sh [ROUNDS] > results.jsonl   (needs GNU time, /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
[ -x /usr/bin/time ] || { echo "bench/cpu_pool.sh: needs GNU time at /usr/bin/time (Debian: apt-get install time)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ftune" ./cmd/ftune
go build -o "$tmp/lorabench" ./internal/cmd/lorabench
for r in $(seq "$rounds"); do
	for pool in 0 1; do
		echo "# round $r main job pool $pool $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)" >&2
		rm -rf "$tmp/runs"
		FTUNE_CPU_POOL=$pool /usr/bin/time -f 'TIME %e %M %R' "$tmp/ftune" train --output "$tmp/runs" >"$tmp/log" 2>&1
		awk -v pool="$pool" '
			/^finished [0-9]+ steps in/ { d = $NF; s = 0; if (d ~ /m/) { split(d, a, "m"); s = a[1] * 60; d = a[2] } sub(/s$/, "", d); train = s + d }
			/^validation: loss/ { val = $3 }
			/^TIME / { wall = $2; rss = $3 / 1024; faults = $4 }
			END { printf "{\"bench\":\"main-job\",\"pool\":%s,\"train_s\":%.1f,\"wall_s\":%.1f,\"peak_rss_mib\":%.1f,\"minor_faults\":%d,\"val_loss\":%s}\n", pool == 1 ? "true" : "false", train, wall, rss, faults, val }' "$tmp/log"
	done
	"$tmp/lorabench" -shape smollm2-135m -family llama -prepare >/dev/null # its random weights, written once
	for shape in tiny-base smollm2-135m; do
		echo "# round $r lorabench $shape $(date -u +%H:%M:%S)" >&2
		"$tmp/lorabench" -shape "$shape" -threads 2 -no-pool
		"$tmp/lorabench" -shape "$shape" -threads 2
	done
done
