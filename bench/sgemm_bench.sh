#!/usr/bin/env bash
# Runs the SGEMM comparison of bench/README.md: ftune (AVX-512, AVX2),
# gonum, the naive loop and OpenBLAS (through Debian's numpy), 1 and 2
# threads, ftune and OpenBLAS back to back, ROUNDS times (default 3), so
# that load from other processes on the shared cores shows up as spread
# between rounds instead of as a bias against one side.
#
# Usage: bench/sgemm_bench.sh [ROUNDS] > sgemm-bench.txt
# (SKIP_SLOW=1 leaves out gonum and the naive loop, which take minutes;
# THREADS="2" runs only that thread count.)
# Needs: apt-get install -y python3-numpy libopenblas0-pthread
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bin=$(mktemp -d)/asm.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./kernels/asm
for r in $(seq "$rounds"); do
	for th in ${THREADS:-1 2}; do
		echo "# round $r threads $th $(date -u +%H:%M:%S)"
		"$bin" -test.run '^$' -test.bench '^BenchmarkSgemmImpl$/^(avx512|avx2)/' -test.cpu "$th" -test.benchtime 3x
		# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine for
		# old OpenBLAS builds; unset for this command only (see the env doc).
		env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/sgemm_openblas.py --threads "$th" --min-time 0.5 |
			if [ "$r" = 1 ] && [ "$th" = 1 ]; then cat; else grep '^OpenBLAS/'; fi
	done
done
if [ -n "${SKIP_SLOW:-}" ]; then
	exit 0
fi
echo "# gonum and naive, once $(date -u +%H:%M:%S)"
for th in 1 2; do
	"$bin" -test.run '^$' -test.bench '^BenchmarkSgemm(Gonum|Naive)$' -test.cpu "$th" -test.benchtime 1x
done
