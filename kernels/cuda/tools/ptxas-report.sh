#!/bin/sh
# ptxas-report.sh: print ptxas -v resource use (registers, static shared
# memory, stack frame, spills) of every kernel in the committed PTX as
# markdown, one table per target, for bench/results/ and kernels/cuda/README.md.
# No GPU needed. The committed .ptx.zst files are not regenerated (TestPTXUpToDate
# pins them to nvcc 11.8); ptxas only assembles them.
#
#   PTXAS        the ptxas to use; default: $CUDA12_DIR/usr/bin/ptxas when it
#                exists (tools/cuda12.sh unpacks ptxas 12.4 there), else the
#                ptxas on PATH (make cuda-tools: Debian's 11.8, which cannot
#                assemble for sm_90a)
#   PTXAS_ARCHS  the targets (default "sm_80 sm_90a")
#
# A kernel that fails to assemble for a target is a row with the error, and
# the script exits 1 after printing every table.
set -eu
dir=$(dirname "$0")/..
c12=${CUDA12_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ftune/cuda12}
if [ -z "${PTXAS:-}" ]; then
	if [ -x "$c12/usr/bin/ptxas" ]; then PTXAS=$c12/usr/bin/ptxas; else PTXAS=ptxas; fi
fi
command -v "$PTXAS" >/dev/null 2>&1 || { echo "ptxas-report: $PTXAS not found (run kernels/cuda/tools/cuda12.sh or make cuda-tools)" >&2; exit 1; }
echo "ptxas: $("$PTXAS" --version | tail -n 2 | head -n 1)"
echo
status=0
# The committed PTX is compressed (X.ptx.zst): ptxas reads a decompressed copy.
tmpd=$(mktemp -d)
trap 'rm -rf "$tmpd"' EXIT
for zst in "$dir"/*.ptx.zst; do
	n=$(basename "$zst" .zst)
	zstd -q -dc "$zst" >"$tmpd/$n"
done
for arch in ${PTXAS_ARCHS:-sm_80 sm_90a}; do
	echo "### $arch"
	echo
	echo "| file | kernel | registers | static smem (B) | stack (B) | spill st/ld (B) |"
	echo "| --- | --- | ---: | ---: | ---: | ---: |"
	for f in "$tmpd"/*.ptx; do
		name=$(basename "$f")
		# X_sm90.ptx is sm_90a code (wgmma): it assembles for sm_90a only.
		case $name:$arch in *_sm90.ptx:sm_90a) ;; *_sm90.ptx:*) continue ;; esac
		if ! log=$("$PTXAS" -v -arch="$arch" "$f" -o /dev/null 2>&1); then
			echo "| $name | (ptxas failed: $(echo "$log" | grep -m 1 -i error | tr '|' '/')) | | | | |"
			status=1
			continue
		fi
		echo "$log" | awk -v file="$name" '
			/Compiling entry function/ { k=$7; gsub(/\047/, "", k); st=0; sl=0; sf=0 }
			/bytes stack frame/ { sf=$1; st=$5; sl=$9 }
			/Used [0-9]+ registers/ { r=$5; sm=0; if (match($0, /[0-9]+ bytes smem/)) { sm=substr($0, RSTART, RLENGTH); sub(/ bytes smem/, "", sm) }
				printf "| %s | %s | %s | %s | %s | %s/%s |\n", file, k, r, sm, sf, st, sl }'
	done
	echo
done
exit $status
