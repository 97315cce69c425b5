#!/usr/bin/env bash
# Check ftune's quantized GGUF exports and importance matrices against
# llama.cpp's own tools. Not part of CI: it needs a llama.cpp build.
#
#   LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin scripts/check-quantize.sh [MODEL...]
#
# MODEL is a Hugging Face folder (default: the shipped tiny-base and the
# tiny Qwen3, Gemma 2, Gemma 3, Phi-3, Phi-4-mini, SmolLM3 and Granite configurations under
# testdata). For each it:
#   1. exports the model as F32 GGUF, computes the importance matrix of a
#      calibration text (the bundled subjects' training questions and
#      answers) with `ftune imatrix` and with llama-imatrix on the F32 file,
#      and holds them to each other (ggufcheck imatrix: the same entries,
#      chunks and token counts, importances within 1e-3 relative RMS);
#   2. exports every mix of llama-quantize's that ftune writes (Q4_0, Q4_1,
#      Q5_0, Q5_1, the k-quant ones, IQ4_NL and IQ4_XS), without and with
#      --imatrix (ftune's
#      matrix), and checks that each file equals llama-quantize's (with
#      --imatrix and the same matrix) quantization of the F32 file, tensor
#      for tensor and byte for byte (ggufcheck same); and Q4_K_M with the
#      head and the embeddings in Q8_0 (--output-tensor-type,
#      --token-embedding-type) the same way.
#
# llama.cpp: the source that npm's node-llama-cpp bundles (npm pack
# node-llama-cpp@3.22.1; git clone package/llama/gitRelease.bundle), built
# with cmake -DGGML_NATIVE=OFF -DCMAKE_C_FLAGS=-ffp-contract=off
# -DCMAKE_CXX_FLAGS=-ffp-contract=off and the targets llama-imatrix and
# llama-quantize (no fused multiply-adds: ftune's quantizers compute as
# ggml's C code does without them).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LLAMA_CPP_BIN:?set LLAMA_CPP_BIN to a llama.cpp build/bin folder (see the header of this script)}
for t in llama-imatrix llama-quantize; do
	[[ -x $bin/$t ]] || { echo "check-quantize: $bin/$t not found" >&2; exit 1; }
done
models=("$@")
if [[ ${#models[@]} -eq 0 ]]; then
	models=(assets/models/tiny-base testdata/qwen3-tiny testdata/gemma2-tiny testdata/gemma3-tiny testdata/phi3-tiny testdata/phi4mini-tiny testdata/smollm3-tiny testdata/granite-tiny)
fi
mixes=(q4_0 q4_1 q5_0 q5_1 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k iq4_nl iq4_xs)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
go run ./internal/cmd/tinymodels >/dev/null # the tiny folders' weights and tokenizer (not committed)
go build -o "$work/ftune" ./cmd/ftune
go build -o "$work/ggufcheck" ./internal/cmd/ggufcheck
# Calibration text: every training question and answer of the bundled
# subjects, as plain text.
python3 - "$work/calib.txt" <<'EOF'
import glob, json, sys
with open(sys.argv[1], "w") as out:
    for f in sorted(glob.glob("assets/data/subjects/*/train.jsonl")):
        for line in open(f):
            m = json.loads(line)["messages"]
            out.write("Question: %s\nAnswer: %s\n\n" % (m[0]["content"], m[1]["content"]))
EOF

for model in "${models[@]}"; do
	name=$(basename "$model")
	d=$work/$name
	mkdir -p "$d"
	echo "== $name"
	"$work/ftune" export --model "$model" --format gguf --quant f32 --out "$d/f32.gguf" >/dev/null
	"$work/ftune" imatrix --model "$model" --text "$work/calib.txt" --ctx 128 --out "$d/ftune.imatrix.gguf" 2>/dev/null
	if "$bin/llama-imatrix" -m "$d/f32.gguf" -f "$work/calib.txt" -c 128 -t 2 -o "$d/llama.imatrix.gguf" >"$d/llama-imatrix.log" 2>&1; then
		printf '  imatrix vs llama-imatrix: '
		"$work/ggufcheck" imatrix "$d/ftune.imatrix.gguf" "$d/llama.imatrix.gguf" 1e-3
	elif grep -q "error loading model vocabulary" "$d/llama-imatrix.log"; then
		# llama.cpp looks up </s>, <unk> and <s> in the vocabulary of any
		# model whose general.name contains "phi3" (llama-vocab.cpp, token
		# attributes). phi3-tiny (named after its folder) carries
		# tiny-base's 4096-token vocabulary, which has none of them; a real
		# Phi-3 vocabulary has all three. No llama-imatrix run to compare.
		echo "  imatrix vs llama-imatrix: NOT COMPARED (llama.cpp cannot load this test vocabulary under a Phi-3 name)"
	else
		tail -20 "$d/llama-imatrix.log" >&2
		exit 1
	fi
	for q in "${mixes[@]}"; do
		Q=${q^^}
		for im in "" "$d/ftune.imatrix.gguf"; do
			flag=() label=""
			if [[ -n $im ]]; then
				flag=(--imatrix "$im") label="+imatrix"
			fi
			"$work/ftune" export --model "$model" --format gguf --quant "$q" "${flag[@]}" --out "$d/ftune-$q.gguf" >/dev/null
			"$bin/llama-quantize" "${flag[@]}" "$d/f32.gguf" "$d/llama-$q.gguf" "$Q" 2 >"$d/quantize-$q.log" 2>&1 ||
				{ tail -20 "$d/quantize-$q.log" >&2; exit 1; }
			printf '  %-15s ' "$Q$label"
			"$work/ggufcheck" same "$d/ftune-$q.gguf" "$d/llama-$q.gguf"
		done
	done
	# The head and the embeddings in types of the user's (bartowski's
	# "Q4_K_L" recipe: both in Q8_0; tied embeddings take the head's).
	ov=(--output-tensor-type q8_0 --token-embedding-type q8_0)
	"$work/ftune" export --model "$model" --format gguf --quant q4_k_m "${ov[@]}" --out "$d/ftune-ov.gguf" >/dev/null
	"$bin/llama-quantize" "${ov[@]}" "$d/f32.gguf" "$d/llama-ov.gguf" Q4_K_M 2 >"$d/quantize-ov.log" 2>&1 ||
		{ tail -20 "$d/quantize-ov.log" >&2; exit 1; }
	printf '  %-15s ' "Q4_K_M+Q8_0 head/embeddings"
	"$work/ggufcheck" same "$d/ftune-ov.gguf" "$d/llama-ov.gguf"
done
echo "check-quantize: all files match"
