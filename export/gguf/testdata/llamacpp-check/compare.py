"""Device check: llama.cpp loads ftune's GGUF files and transformers loads the
merged folder; each gives the logits ftune computes (printed with the errors)."""
import json, subprocess, sys, os
import numpy as np

out = sys.argv[1]
ref = json.load(open(f"{out}/reference.json"))
ids, V = ref["ids"], ref["vocab"]
T = len(ids)
base = np.array(ref["logits_base"], dtype=np.float64).reshape(T, V)
lora = np.array(ref["logits_lora"], dtype=np.float64).reshape(T, V)
open(f"{out}/text.txt", "w").write(ref["text"])
csv = ",".join(map(str, ids))
fails = []

def run(model, adapter, tag):
    p = subprocess.run(["./.devcheck/build/logits", model, adapter, csv, f"{out}/{tag}.bin", f"{out}/text.txt"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stderr[-3000:])
        fails.append(f"{tag}: llama.cpp failed (rc {p.returncode})")
        return None, None
    toks = [int(x) for x in p.stdout.split("TOKENS")[1].split()]
    return np.fromfile(f"{out}/{tag}.bin", dtype=np.float32).astype(np.float64).reshape(T, V), toks

def report(tag, got, want, limit):
    d = np.abs(got - want).max()
    top = (got.argmax(1) == want.argmax(1)).mean()
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    ok = d <= limit
    print(f"{tag:28s} max|Δlogit| {d:9.5f}  rel-L2 {rel:.2e}  top-1 agree {top*100:5.1f}%  (limit {limit}) {'OK' if ok else 'FAIL'}")
    if not ok:
        fails.append(tag)

print(f"logit range of ftune's base: [{base.min():.2f}, {base.max():.2f}], T={T}, V={V}")
# Measured 0.011 / 0.011 / 0.24 / 3.25 on tiny-base (F32 and F16 are
# dominated by the f16 rounding inside llama.cpp's CPU flash attention;
# the no-flash-attention row below checks F32 at float32 noise).
limits = {"F32": 0.02, "F16": 0.1, "Q8_0": 0.5, "Q4_0": 4.0}
for t, lim in limits.items():
    got, toks = run(f"{out}/tiny-{t}.gguf", "-", t)
    if got is None:
        continue
    report(f"llama.cpp {t} vs ftune f32", got, base, lim)
    if t == "F32":
        same = toks == ref["text_ids"]
        print(f"tokenization of {ref['text']!r}: llama.cpp {'==' if same else '!='} ftune ({len(toks)} vs {len(ref['text_ids'])} ids)")
        if not same:
            print("  llama.cpp", toks); print("  ftune    ", ref["text_ids"])
            fails.append("tokenization")
os.environ["NO_FA"] = "1"
got, _ = run(f"{out}/tiny-F32.gguf", "-", "F32nofa")
if got is not None:
    report("llama.cpp F32 (no flash-attn)", got, base, 1e-3)
del os.environ["NO_FA"]
got, _ = run(f"{out}/tiny-F32.gguf", f"{out}/tiny-lora-F16.gguf", "lora")
if got is not None:
    report("llama.cpp F32+LoRA(F16)", got, lora, 0.05)
    print(f"  (the adapter moves ftune's logits by up to {np.abs(lora-base).max():.3f})")

import torch, transformers
m = transformers.AutoModelForCausalLM.from_pretrained(f"{out}/merged", dtype=torch.float32)
with torch.no_grad():
    hf = m(torch.tensor([ids])).logits[0].double().numpy()
print(f"transformers {transformers.__version__} loaded merged/ ({m.config.dtype if hasattr(m.config,'dtype') else ''})")
report("transformers merged(bf16)", hf, lora, 0.15)
print("FAILURES:", fails if fails else "none")
sys.exit(1 if fails else 0)
