#!/usr/bin/env bash
# Runs the CPU LoRA comparison of bench/README.md: ftune (bf16 frozen
# weights computed in float32, and NF4/QLoRA) and PyTorch (torch_cpu_lora.py,
# float32) on tiny-base 8x256 and a SmolLM2-135M shape 1x512, 1 and 2
# threads. The sides run back to back for each configuration, interleaved,
# ROUNDS times (default 5), one process per run so that each peak RSS is its
# own; the table keeps each configuration's best run. On a machine shared
# with other jobs, load shows up as spread between rounds, not as a bias
# against one side.
#
# PRECISIONS="f32 bf16" also runs precision bf16 on both sides: ftune's
# products of bf16-rounded operands on AVX512_BF16 (-precision bf16) and
# PyTorch's autocast to bf16 (--bf16). Default: f32 only.
#
# Usage: [PRECISIONS="f32 bf16"] [TORCH_PYTHON=CMD] bench/cpu_lora.sh [ROUNDS] [RESULTS.jsonl]
# (python3 bench/cpu_lora_table.py A.jsonl B.jsonl ... makes one table of
# several invocations.)
# Needs: apt-get install -y python3-torch libopenblas0-pthread (Debian
# bookworm's PyTorch 1.13), or TORCH_PYTHON naming another python3 with
# torch: TORCH_PYTHON="bash scripts/hf-root.sh run python3" runs the
# PyTorch side on Debian sid's PyTorch 2.14 (as root; see that script).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=${2:-$tmp/results.jsonl}
: >"$results"
go build -o "$tmp/lorabench" ./internal/cmd/lorabench
# The random-weight SmolLM2-shaped folder is made once (outside any timing)
# and reused from the system's temp folder.
for r in $(seq "$rounds"); do
	for shape in tiny-base smollm2-135m; do
		for th in 1 2; do
			for prec in ${PRECISIONS:-f32}; do
				echo "# round $r $shape threads $th precision $prec $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)" >&2
				torchprec=()
				if [ "$prec" = bf16 ]; then torchprec=(--bf16); fi
				"$tmp/lorabench" -shape "$shape" -threads "$th" -quant f32 -precision "$prec" >>"$results"
				# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine for
				# old OpenBLAS builds; unset for this command only (see the env doc).
				# OPENBLAS_NUM_THREADS / OMP_NUM_THREADS: Debian's torch runs its GEMMs on
				# OpenBLAS's own pthread pool, which torch.set_num_threads does not
				# limit (it would use both cores at "1 thread").
				# shellcheck disable=SC2086 # TORCH_PYTHON is a command line
				env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$th" OMP_NUM_THREADS="$th" ${TORCH_PYTHON:-/usr/bin/python3} bench/torch_cpu_lora.py --shape "$shape" --threads "$th" "${torchprec[@]}" 2>/dev/null >>"$results"
				"$tmp/lorabench" -shape "$shape" -threads "$th" -quant nf4 -precision "$prec" >>"$results"
			done
		done
	done
done
python3 bench/cpu_lora_table.py "$results"
