#!/usr/bin/env bash
# Peak memory and time of `ftune export` on a full-size random-weight model
# (bench/cmd/randommodel: bf16 weights of the shape, tiny-base's tokenizer,
# a LoRA adapter r=16 on all seven projections), one process per export.
# The PEFT export writes only the adapter, so its peak is the floor every
# export shares: loading the base (and the file's pages while it is read).
# The other rows say what merging and writing add to it.
#
# Usage: bench/export_memory.sh [SHAPE]   (default llama-3.2-1b: a 2.5 GB
# folder written once under the system's temp folder; llama-3-8b needs
# about 16 GB of disk and 40 GB of memory)
#
# No anchor runs here: PEFT's merge_and_unload needs PyTorch, which this
# machine lacks. Needs GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-llama-3.2-1b}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ftune" ./cmd/ftune
model=$(go run ./bench/cmd/randommodel -shape "$shape" -adapter "$tmp/adapter")
weights=$(stat -c %s "$model/model.safetensors")
measure() { # name, then export flags
	local name=$1
	shift
	/usr/bin/time -f "%e %M" -o "$tmp/time" "$tmp/ftune" export --adapter "$tmp/adapter" --out "$tmp/out-$name" "$@" >/dev/null
	read -r secs kib <"$tmp/time"
	rm -rf "$tmp/out-$name"
	echo "$name $secs $kib"
}
awk -v s="$shape" -v w="$weights" 'BEGIN { printf "%s: weights file %.2f GiB\n\n", s, w/1073741824 }'
printf '| export | seconds | peak RSS GiB | × weights file | above the PEFT floor GiB |\n| --- | --- | --- | --- | --- |\n'
floor=
for row in "peft --format peft" "merged --format merged" "gguf-f16 --format gguf --quant f16" "gguf-q4_0 --format gguf --quant q4_0"; do
	read -r name secs kib < <(measure $row)
	floor=${floor:-$kib}
	awk -v n="$name" -v s="$secs" -v k="$kib" -v w="$weights" -v f="$floor" \
		'BEGIN { printf "| %s | %.1f | %.2f | %.2f | %.2f |\n", n, s, k/1048576, k*1024/w, (k-f)/1048576 }'
done
