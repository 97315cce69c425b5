#!/bin/bash
# Device check (run from the repo root): build llama.cpp (CPU) + driver, export
# tiny-base with ftune, compare llama.cpp's and transformers' logits with ftune's.
set -e
t0=$SECONDS
nproc; g++ --version | head -1; cmake --version | head -1
cmake -S .devcheck -B .devcheck/build -G Ninja -DCMAKE_BUILD_TYPE=Release > .devcheck/cmake.log 2>&1 || { tail -30 .devcheck/cmake.log; exit 1; }
cmake --build .devcheck/build -j 16 --target logits > .devcheck/build.log 2>&1 || { grep -m5 -B2 -A10 error .devcheck/build.log; tail -20 .devcheck/build.log; exit 1; }
echo "build: $((SECONDS-t0)) s"
out=/tmp/devout; rm -rf $out
./.devcheck/ggufcheck reference $out assets/models/tiny-base
echo "export: $((SECONDS-t0)) s"
python3 .devcheck/compare.py $out 2>&1 | grep -v Warning
echo "total: $((SECONDS-t0)) s"
