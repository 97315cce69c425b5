"""Writes a golden logits file: llama.cpp's logits for a few prompts of ids
on ftune's F32 GGUF export of a tiny model folder (testdata/qwen3-tiny,
gemma2-tiny, gemma3-tiny, phi3-tiny, phi4mini-tiny, smollm3-tiny, granite-tiny: their READMEs give the
provenance and the commands). Those folders commit no weights: write them
first with `go run ./internal/cmd/tinymodels` (internal/tinymodels draws
them from seeds, byte-identical to the files the goldens were made on),
then export with `go run ./internal/cmd/ggufcheck tiny OUT testdata/<family>-tiny`.

usage: python3 golden.py LOGITS_BIN MODEL.gguf LLAMA_CPP_COMMIT PROMPTS.json OUT.safetensors

PROMPTS.json is the folder's llamacpp_prompts.json: a list of prompts, each
a list of token ids below 4096 (the tiny models' vocabulary).

LOGITS_BIN is export/gguf/testdata/llamacpp-check/logits.cpp built against
llama.cpp's libllama (CPU). It runs with NO_FA=1 (no flash attention, whose
CPU path rounds inside to f16) and a float32 KV cache, so both sides compute
in float32. Standard library only.
"""
import array, hashlib, json, os, struct, subprocess, sys, tempfile

VOCAB = 4096

def main():
    binary, model, commit, prompts, out = sys.argv[1:6]
    tensors, env = [], dict(os.environ, NO_FA="1")
    for i, ids in enumerate(json.load(open(prompts))):
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            subprocess.run([binary, model, "-", ",".join(map(str, ids)), f.name], check=True, env=env, capture_output=True)
            raw = open(f.name, "rb").read()
        if len(raw) != 4 * len(ids) * VOCAB:
            sys.exit(f"prompt {i}: {len(raw)} bytes of logits, want {4 * len(ids) * VOCAB}")
        tensors.append((f"p{i}.input_ids", "I64", [1, len(ids)], array.array("q", ids).tobytes()))
        tensors.append((f"p{i}.logits", "F32", [1, len(ids), VOCAB], raw))
    sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
    meta = {"llama_cpp_commit": commit, "model_sha256": sha, "no_flash_attention": "1", "kv_cache": "f32",
            "command": f"NO_FA=1 logits {os.path.basename(model)} - IDS OUT.bin (per prompt)"}
    header, offset = {"__metadata__": meta}, 0
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, _, _, data in tensors:
            f.write(data)

main()
