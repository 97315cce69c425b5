#!/bin/bash
# gpu-train.sh: a tiny-base LoRA run on the GPU beside the same run on the
# CPU (loss curves compared step by step), then ftune's LoRA step on the
# GPU beside PyTorch + PEFT (bench/peft_lora_bench.py) on the same shape,
# timed by bench/cmd/gpubench (the trainer ftune train runs; the full table
# with its per-op profiles is scripts/gpu-bench.sh's).
#
#   scripts/gpu-train.sh build    here: cross-build ftune and bench/cmd/gpubench
#                                 (CGO_ENABLED=0) into .gputrain/
#   scripts/gpu-train.sh device   on the GPU machine (carry .gputrain): runs
#                                 everything, tables and logs to $OUT
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/carry.sh
BIN=.gputrain

build() {
	set -e
	mkdir -p "$BIN"
	local exclude
	exclude=$(git rev-parse --git-path info/exclude)
	grep -qx "/$BIN/" "$exclude" 2>/dev/null || echo "/$BIN/" >>"$exclude"
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -ldflags="-s -w" -o "$BIN/ftune" ./cmd/ftune
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -ldflags="-s -w" -o "$BIN/gpubench" ./bench/cmd/gpubench
	pack_bins "$BIN" ftune gpubench
	ls -la "$BIN"
}

device() {
	OUT=${OUT:-$PWD/gputrain-out}
	mkdir -p "$OUT"
	unpack_bins "$BIN" || return 1
	export FTUNE_CACHE=/tmp/ftune-cache
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/env.txt"
	local common=(--max-steps 20 --eval-questions 2 --output "$OUT/runs" --no-progress
		--set training.eval.every=10 --set training.checkpointing.every=0 --set training.eval.generation.samples=1)
	local t0=$SECONDS
	timeout 120 "$BIN/ftune" train --device cuda --run-name gpu "${common[@]}" >"$OUT/train-gpu.log" 2>&1
	echo "gpu train: exit $? in $((SECONDS - t0)) s"
	t0=$SECONDS
	timeout 120 "$BIN/ftune" train --device cpu --run-name cpu "${common[@]}" >"$OUT/train-cpu.log" 2>&1
	echo "cpu train: exit $? in $((SECONDS - t0)) s"
	python3 - "$OUT" <<'PY' | tee "$OUT/curves.txt"
import json, sys, os
out = sys.argv[1]
def series(name):
    s = {}
    p = os.path.join(out, "runs", name, "metrics.jsonl")
    if not os.path.exists(p): return s
    for line in open(p):
        r = json.loads(line)
        for k, v in r.get("metrics", r).items():
            if k in ("train/loss", "val/loss") and isinstance(v, (int, float)):
                s[(k, r["step"])] = v
    return s
g, c = series("gpu"), series("cpu")
print("%-10s %5s %12s %12s %10s" % ("metric", "step", "gpu", "cpu", "rel diff"))
worst = 0
for key in sorted(set(g) & set(c), key=lambda k: (k[0], k[1])):
    d = abs(g[key] - c[key]) / max(abs(c[key]), 1e-12); worst = max(worst, d)
    print("%-10s %5d %12.6f %12.6f %10.2e" % (key[0], key[1], g[key], c[key], d))
print("points compared: %d, worst relative difference %.3g" % (len(set(g) & set(c)), worst))
PY
	for mode in bf16 f32; do
		t0=$SECONDS
		flag=""
		[ "$mode" = f32 ] && flag="-f32"
		timeout 90 "$BIN/gpubench" step -shape smollm2-135m -batch 8 -seq 2048 $flag -warmup 1 -steps 3 -cache /tmp >>"$OUT/lora.jsonl" 2>>"$OUT/lora.err"
		echo "gpubench step $mode: exit $? in $((SECONDS - t0)) s"
	done
	t0=$SECONDS
	ANCHOR_SKIP_CEILINGS=1 ANCHOR_RUNS=smollm2-135m:8:2048:0 timeout 150 python3 bench/peft_lora_bench.py "$OUT" >"$OUT/anchor.log" 2>&1
	echo "anchor: exit $? in $((SECONDS - t0)) s"
	python3 - "$OUT" <<'PY' | tee "$OUT/lora-table.txt"
import json, sys, os
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "lora.jsonl"))] if os.path.exists(os.path.join(out, "lora.jsonl")) else []
anchor = None
p = os.path.join(out, "gpubench.json")
if os.path.exists(p):
    a = json.load(open(p)).get("peft_lora_bf16_sdpa", {}).get("smollm2-135m_b8_t2048_ckpt0")
    if isinstance(a, dict): anchor = a
print("LoRA step, smollm2-135m shape, batch 8 x 2048, r=16 on 7 projections")
print("%-28s %12s %10s %10s" % ("side", "tokens/s", "step s", "peak GiB"))
if anchor:
    print("%-28s %12.0f %10.3f %10.1f" % ("PyTorch+PEFT (bf16, SDPA)", anchor["tokens_per_s"], anchor["step_s"], anchor["peak_mem_gib"]))
for r in rows:
    ratio = (" %.3fx" % (r["tokens_per_s"] / anchor["tokens_per_s"])) if anchor else ""
    print("%-28s %12.0f %10.3f %10.1f%s" % ("ftune (%s GEMMs)" % r["variant"], r["tokens_per_s"], r["step_s"], r["peak_gib"], ratio))
PY
	tail -3 "$OUT/train-gpu.log" "$OUT/lora.err" 2>/dev/null | head -20
}

case "${1:-}" in
build) build ;;
device) device ;;
*) echo "usage: $0 build|device" >&2; exit 2 ;;
esac
