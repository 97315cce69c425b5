"""Token ids of gen/texts.json from llama.cpp's own tokenizer (llama-tokenize
on a vocabulary GGUF, special tokens parsed, no BOS): a second reference,
independent of tokenizer.json and of tokenizers.js.

    python3 make_llamacpp_golden.py <llama.cpp build/bin> <vocab.gguf> <texts.json> <golden_llamacpp.json>
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    bindir, vocab, texts_file, out = sys.argv[1:5]
    env = dict(os.environ, LD_LIBRARY_PATH=bindir)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "text")
        for text in json.load(open(texts_file, encoding="utf-8")):
            if not text:
                continue  # llama-tokenize refuses an empty prompt
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            run = subprocess.run([os.path.join(bindir, "llama-tokenize"), "-m", vocab, "-f", path, "--ids", "--no-bos", "--log-disable"],
                                 capture_output=True, text=True, env=env, check=True)
            cases.append({"text": text, "ids": json.loads(run.stdout.strip().splitlines()[-1])})
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"source": "llama.cpp llama-tokenize --ids --no-bos on " + os.path.basename(vocab), "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
