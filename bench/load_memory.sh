#!/usr/bin/env bash
# Peak memory and time of loading a full-size random-weight model
# (bench/cmd/randommodel: bf16 weights of the shape) the way `ftune train`
# does on the CPU: bf16 matrices kept, and with NF4 quantization (QLoRA,
# --memory-lean). One process per load, RUNS rounds alternating the two.
#
# Usage: bench/load_memory.sh [SHAPE] [RUNS]   (default llama-3.2-1b, 3;
# llama-3-8b needs about 16 GB of disk; its bf16 load about 16 GiB of RAM)
#
# No anchor runs here: transformers' from_pretrained and bitsandbytes need
# PyTorch, which this machine lacks. Needs GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-llama-3.2-1b}
runs=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/loadmodel" ./bench/cmd/loadmodel
model=$(go run ./bench/cmd/randommodel -shape "$shape")
weights=$(stat -c %s "$model/model.safetensors")
awk -v s="$shape" -v w="$weights" 'BEGIN { printf "%s: weights file %.2f GiB\n\n", s, w/1073741824 }'
printf '| load | run | seconds | peak RSS GiB | × weights file |\n| --- | --- | --- | --- | --- |\n'
for run in $(seq 1 "$runs"); do
	for load in bf16 nf4; do
		flags=()
		[ "$load" = nf4 ] && flags=(-nf4)
		/usr/bin/time -f "%e %M" -o "$tmp/time" "$tmp/loadmodel" "${flags[@]}" "$model" >/dev/null
		read -r secs kib <"$tmp/time"
		awk -v n="$load" -v r="$run" -v s="$secs" -v k="$kib" -v w="$weights" \
			'BEGIN { printf "| %s | %d | %.1f | %.2f | %.2f |\n", n, r, s, k/1048576, k*1024/w }'
	done
done
