#!/bin/sh
# ptxas-report.sh: print ptxas -v resource use (registers, shared memory,
# stack, spills) of every embedded PTX for sm_80 and sm_90 as markdown, for
# kernels/cuda/README.md. Needs ptxas (make cuda-tools); no GPU.
set -eu
dir=$(dirname "$0")/..
for arch in sm_80 sm_90; do
	echo "### $arch"
	echo
	echo "| kernel | registers | static smem (B) | stack (B) | spill st/ld (B) |"
	echo "| --- | --- | --- | --- | --- |"
	for f in "$dir"/*.ptx; do
		ptxas -v -arch=$arch "$f" -o /dev/null 2>&1 | awk '
			/Compiling entry function/ { gsub(/\x27/, "", $7); k=$7; st=0; sl=0; sf=0; sm=0 }
			/bytes stack frame/ { sf=$1; st=$5; sl=$9 }
			/Used [0-9]+ registers/ { r=$5; sm=0; if (match($0, /[0-9]+ bytes smem/)) { sm=substr($0, RSTART, RLENGTH); sub(/ bytes smem/, "", sm) }
				printf "| %s | %s | %s | %s | %s/%s |\n", k, r, sm, sf, st, sl }'
	done | sort
	echo
done
