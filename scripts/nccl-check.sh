#!/bin/bash
# nccl-check.sh: prove dist's NCCL engine on a GPU machine in one call.
#
#   scripts/nccl-check.sh build    here (no GPU needed): cross-build the dist
#                                  test binary and ftune with CGO_ENABLED=0
#                                  into .gpucheck/ (ignored by git; carry it).
#   scripts/nccl-check.sh device   on the GPU machine, from the repo root:
#                                  TestNCCLWorldOfOne (one rank on GPU 0),
#                                  TestNCCLAcrossTwoGPUs (two ranks in one
#                                  process when there are two GPUs) with the
#                                  all-reduce bandwidth NCCL reaches on device
#                                  buffers and through the host-staged Comm,
#                                  and, where mpirun and two GPUs are present,
#                                  a 3-step `ftune train --nproc-per-node 2
#                                  --device cuda` (its env.json must name
#                                  nccl). Logs go to $OUT (default
#                                  ./ncclcheck-out): nccl.log and train.log.
#
# A test that skips prints why (no libnccl.so.2, fewer GPUs): the log is
# the record. Device budget: under 3 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.gpucheck

build() {
	set -e
	mkdir -p "$BIN"
	local exclude
	exclude=$(git rev-parse --git-path info/exclude) # a worktree's .git is a file
	mkdir -p "$(dirname "$exclude")"
	grep -qx "/$BIN/" "$exclude" 2>/dev/null || echo "/$BIN/" >>"$exclude"
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go test -c -ldflags="-s -w" -o "$BIN/dist.test" ./dist
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -o "$BIN/ftune" ./cmd/ftune
	ls -la "$BIN/dist.test" "$BIN/ftune"
}

device() {
	local out=${OUT:-./ncclcheck-out}
	mkdir -p "$out"
	{
		nvidia-smi -L 2>&1 || echo "nvidia-smi: not found"
		ldconfig -p 2>/dev/null | grep -E 'libnccl\.so\.2|libcuda\.so\.1' || echo "ldconfig: no libnccl.so.2 or libcuda.so.1 listed"
		timeout 150 "$BIN/dist.test" -test.run 'NCCL' -test.v -test.count=1
		echo "dist.test exit: $?"
	} 2>&1 | tee "$out/nccl.log"
	local gpus
	gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
	if [ "${gpus:-0}" -ge 2 ] && command -v mpirun >/dev/null; then
		local run
		run=$(mktemp -d)
		{
			timeout 150 "$BIN/ftune" train --nproc-per-node 2 --device cuda --max-steps 3 --batch-size 4 --seq-len 128 \
				--eval-questions 0 --set training.grad_accum=2 --output "$run" --run-name nccl --no-progress
			echo "train exit: $?"
			grep -E '"(world_size|engine)"' "$run/nccl/env.json"
		} 2>&1 | tee "$out/train.log"
	else
		echo "two-worker training skipped: $gpus GPU(s), mpirun $(command -v mpirun || echo absent)" | tee "$out/train.log"
	fi
}

case "${1:-}" in
build) build ;;
device) device ;;
*)
	echo "usage: $0 build|device" >&2
	exit 2
	;;
esac
