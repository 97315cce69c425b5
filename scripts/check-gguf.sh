#!/usr/bin/env bash
# Check GGUF files written by ftune with a reader we did not write:
# llama.cpp's gguf-py, taken from the llama.cpp source bundle that the npm
# package node-llama-cpp ships (package/llama/gitRelease.bundle, a git
# bundle of the llama.cpp release it builds against). Not part of CI: it
# downloads the package (about 35 MB) on first use.
#
#   scripts/check-gguf.sh FILE.gguf...     check these files
#   scripts/check-gguf.sh --tiny           export the shipped tiny-base as
#                                          F32, F16, Q8_0, Q4_0, the k-quant
#                                          mixes Q2_K, Q3_K_S/M/L, Q4_K_S/M,
#                                          Q5_K_S/M, Q6_K and a
#                                          LoRA adapter, then check them all
#
# For each file it prints gguf-py's view (metadata, tensor table) and fails
# when it disagrees with ftune's reader (internal/cmd/ggufcheck dump) on keys,
# types, tensor names/types/shapes/offsets or dequantized values. With
# --tiny, the F16, Q8_0, Q4_0, Q5_0 and Q5_1 tensors must also be
# byte-identical to gguf-py's quantization of the F32 export (gguf-py
# cannot quantize the k-quants: TestKQuantsMatchLlamaCpp holds those to
# ggml's own quantizer).
#
# Needs: npm, git, Go, python3 with numpy (Debian: apt-get install -y
# python3-numpy; gguf-py needs nothing else for reading).
# Environment: NODE_LLAMA_CPP_VERSION (default 3.22.1), FTUNE_CHECK_CACHE
# (where the package and gguf-py are kept; default ~/.cache/ftune/check-gguf).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
version=${NODE_LLAMA_CPP_VERSION:-3.22.1}
cache=${FTUNE_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ftune/check-gguf}/node-llama-cpp-$version
ggufpy=$cache/llama.cpp/gguf-py

if [[ $# -eq 0 ]]; then
	sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi

# A python3 that has numpy: the one on PATH, else Debian's.
py=""
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import numpy' 2>/dev/null; then
		py=$p
		break
	fi
done
if [[ -z $py ]]; then
	echo "check-gguf: no python3 with numpy; on Debian/Ubuntu: apt-get install -y python3-numpy" >&2
	exit 1
fi

if [[ ! -f $ggufpy/gguf/gguf_reader.py ]]; then
	echo "check-gguf: fetching gguf-py from node-llama-cpp@$version" >&2
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
	tar -xzf "$tmp"/node-llama-cpp-"$version".tgz -C "$tmp" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
	git clone --quiet --no-checkout "$tmp/package/llama/gitRelease.bundle" "$tmp/llama.cpp"
	git -C "$tmp/llama.cpp" checkout --quiet HEAD -- gguf-py LICENSE
	mkdir -p "$cache"
	rm -rf "$cache/llama.cpp"
	mkdir -p "$cache/llama.cpp"
	cp -r "$tmp/llama.cpp/gguf-py" "$tmp/llama.cpp/LICENSE" "$cache/llama.cpp/"
	cp "$tmp/package/llama/llama.cpp.info.json" "$cache/"
	git -C "$tmp/llama.cpp" rev-parse HEAD >"$cache/llama.cpp/COMMIT"
fi
echo "check-gguf: gguf-py of llama.cpp $(cat "$cache/llama.cpp/COMMIT") (node-llama-cpp $version), $($py --version)" >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/ggufcheck" ./internal/cmd/ggufcheck)

ref=""
files=("$@")
if [[ $1 == --tiny ]]; then
	(cd "$root" && "$work/ggufcheck" tiny "$work/tiny" assets/models/tiny-base >/dev/null)
	files=("$work"/tiny/tiny-F32.gguf "$work"/tiny/tiny-F16.gguf "$work"/tiny/tiny-Q8_0.gguf "$work"/tiny/tiny-Q4_0.gguf
		"$work"/tiny/tiny-Q2_K.gguf "$work"/tiny/tiny-Q3_K_S.gguf "$work"/tiny/tiny-Q3_K_M.gguf "$work"/tiny/tiny-Q3_K_L.gguf "$work"/tiny/tiny-Q4_K_S.gguf "$work"/tiny/tiny-Q4_K_M.gguf "$work"/tiny/tiny-Q5_K_S.gguf "$work"/tiny/tiny-Q5_K_M.gguf
		"$work"/tiny/tiny-Q6_K.gguf "$work"/tiny/tiny-lora-F16.gguf)
	ref=$work/tiny/tiny-F32.gguf
fi

status=0
for f in "${files[@]}"; do
	"$work/ggufcheck" dump "$f" >"$work/dump.json"
	args=("$f" "$work/dump.json")
	if [[ -n $ref && $f != "$ref" && $f != *lora* ]]; then
		args+=("$ref")
	fi
	PYTHONPATH=$ggufpy${PYTHONPATH:+:$PYTHONPATH} "$py" "$root/scripts/check_gguf.py" "${args[@]}" || status=1
done
exit $status
