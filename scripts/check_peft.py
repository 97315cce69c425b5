"""Load the adapters and merged folders ftune wrote (internal/cmd/peftcheck)
with PEFT and transformers, and compare their logits with ftune's.

    python3 scripts/check_peft.py OUT     # from the repository root

For each case folder under OUT: the base model (meta.json's "base", relative
to the repository root) with ftune's adapter loaded by
PeftModel.from_pretrained, and ftune's merged folder loaded by
AutoModelForCausalLM.from_pretrained, each against ftune's logits with the
adapter attached (ftune.safetensors). Bound 1e-4 relative (Frobenius):
float32 on both sides, as TestParity's logits. Exits non-zero when a case
fails or PEFT warns that it ignored a key of the adapter.
"""
import glob, json, os, sys, warnings

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from peft import PeftModel
import transformers, peft

TOL = 1e-4


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def main(out):
    print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
    cases = sorted(glob.glob(os.path.join(out, "*", "meta.json")))
    if not cases:
        sys.exit(f"check_peft.py: no case folders under {out}")
    failed = []
    for path in cases:
        case = os.path.dirname(path)
        meta = json.load(open(path))
        want = load_file(os.path.join(case, "ftune.safetensors"))
        ids, logits = want["input_ids"], want["logits"]
        base = AutoModelForCausalLM.from_pretrained(meta["base"], attn_implementation="eager", dtype=torch.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pm = PeftModel.from_pretrained(base, os.path.join(case, meta["adapter"]))
        ignored = [str(w.message) for w in caught if "missing" in str(w.message).lower() or "unexpected" in str(w.message).lower()]
        pm.eval()
        with torch.no_grad():
            e_adapter = rel(pm(input_ids=ids).logits, logits)
            merged = AutoModelForCausalLM.from_pretrained(os.path.join(case, meta["merged"]), attn_implementation="eager",
                                                          dtype=torch.float32).eval()
            e_merged = rel(merged(input_ids=ids).logits, logits)
            # the adapter must matter, or the comparison proves nothing
            moved = rel(base_logits(meta["base"], ids), logits)
        ok = e_adapter <= TOL and e_merged <= TOL and not ignored and moved > 10 * TOL
        print(f"{os.path.basename(case):28s} PEFT adapter {e_adapter:.3g}  merged folder {e_merged:.3g}  "
              f"(base without adapter {moved:.3g})  {'ok' if ok else 'FAIL'}" + (f"  PEFT warned: {ignored}" if ignored else ""))
        if not ok:
            failed.append(os.path.basename(case))
    if failed:
        sys.exit(f"check_peft.py: failed: {failed}")
    print(f"all {len(cases)} cases within {TOL}")


_base_cache = {}


def base_logits(base, ids):
    if base not in _base_cache:
        m = AutoModelForCausalLM.from_pretrained(base, attn_implementation="eager", dtype=torch.float32).eval()
        with torch.no_grad():
            _base_cache[base] = m(input_ids=ids).logits
    return _base_cache[base]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
