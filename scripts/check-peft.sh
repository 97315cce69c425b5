#!/bin/bash
# check-peft.sh: the files ftune writes, read by PEFT and transformers. For
# each tiny family model (testdata/<family>-tiny) and each adapter variant
# (LoRA; DoRA with rsLoRA; embeddings and LM head in modules_to_save),
# internal/cmd/peftcheck trains an adapter with ftune and writes it, the
# merged Hugging Face folder and ftune's logits; scripts/check_peft.py then
# loads the adapter with PeftModel.from_pretrained and the merged folder
# with AutoModelForCausalLM.from_pretrained and compares their logits with
# ftune's (1e-4 relative). The transformers fixtures (testdata/fixtures)
# check the other direction: PEFT's files read by ftune. Not part of CI.
#
#   scripts/check-peft.sh
#
# Uses the python3 on PATH when it has transformers and peft, otherwise
# scripts/hf-root.sh (root; PEFT_SRC names a checkout of huggingface/peft).
# The cases are written to .peftcheck (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.peftcheck
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx "/$out/" "$exclude" 2>/dev/null || echo "/$out/" >>"$exclude"
rm -rf "$out"
go run ./internal/cmd/peftcheck "$out"
if python3 -c 'import transformers, peft' 2>/dev/null; then
	python3 scripts/check_peft.py "$out"
else
	bash scripts/hf-root.sh run python3 scripts/check_peft.py "$out"
fi
