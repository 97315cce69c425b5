"""Check the tokenizer and chat-template goldens against Hugging Face's own
libraries: the ids in the goldens come from tokenizers.js and the chat
renderings from Python Jinja2 configured as transformers configures it; here
the Rust `tokenizers` library encodes and decodes every golden text, and
transformers' `apply_chat_template` renders every chat case.

    python3 scripts/check_tokenizer_goldens.py     # from the repository root

Needs tokenizers and transformers (scripts/hf-root.sh run python3 ... on a
development machine). Exits non-zero on any difference.
"""
import glob, json, os, sys

from compression import zstd  # Python 3.14
from tokenizers import Tokenizer
import tokenizers, transformers
from transformers import PreTrainedTokenizerFast


def read(folder, name):
    """A file of a golden folder, decompressing name.zst; None when absent."""
    for n, unpack in ((name, lambda b: b), (name + ".zst", zstd.decompress)):
        p = os.path.join(folder, n)
        if os.path.exists(p):
            return unpack(open(p, "rb").read()).decode()
    return None


def tokenizer_folder(folder):
    """The folder holding folder's tokenizer.json (or the one tokenizer_from names)."""
    if read(folder, "tokenizer.json") is not None:
        return folder
    fr = read(folder, "tokenizer_from")
    return tokenizer_folder(os.path.normpath(os.path.join(folder, fr.strip()))) if fr else None


def main():
    print("tokenizers", tokenizers.__version__, "transformers", transformers.__version__)
    bad = total = 0
    for g in sorted(glob.glob("testdata/tokenizers/*/golden_tokenizersjs.json") +
                    glob.glob("data/tokenizer/testdata/*/golden_tokenizersjs*.json")):
        tok = Tokenizer.from_str(read(tokenizer_folder(os.path.dirname(g)), "tokenizer.json"))
        differ = 0
        cases = json.load(open(g))["cases"]
        for c in cases:
            total += 1
            ok = tok.encode(c["text"], add_special_tokens=False).ids == c["ids"]
            if "ids_special" in c:
                ok = ok and tok.encode(c["text"], add_special_tokens=True).ids == c["ids_special"]
            if "decoded" in c:
                ok = ok and tok.decode(c["ids"], skip_special_tokens=False) == c["decoded"]
            if not ok:
                differ += 1
                if differ <= 3:
                    print("  differs:", repr(c["text"][:60]))
        bad += differ
        print(f"{g}: {len(cases)} texts, {differ} differ")
    for g in sorted(glob.glob("testdata/tokenizers/*/chat_golden.json")):
        folder = os.path.dirname(g)
        gold = json.load(open(g))
        tf = tokenizer_folder(folder)
        template = read(folder, "chat_template.jinja")
        if template is None:
            template = json.loads(read(folder, "tokenizer_config.json") or read(tf, "tokenizer_config.json"))["chat_template"]
        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(read(tf, "tokenizer.json")) if tf else None,
                                      bos_token=gold.get("bos_token"), eos_token=gold.get("eos_token"))
        differ = 0
        for c in gold["cases"]:
            total += 1
            try:
                text = tok.apply_chat_template(c["messages"], chat_template=template, tokenize=False,
                                               add_generation_prompt=c["add_generation_prompt"], **c.get("kwargs", {}))
                ok = "error" not in c and text == c["text"]
                if ok and "ids" in c and tf:
                    ok = tok(text, add_special_tokens=False)["input_ids"] == c["ids"]
            except Exception as e:  # the template raised: the golden must say so
                ok, text = "error" in c, f"raised {e}"
            if not ok:
                differ += 1
                if differ <= 3:
                    print(f"  {c['name']}: {text!r:.120} != {c.get('text', c.get('error'))!r:.120}")
        bad += differ
        print(f"{g}: {len(gold['cases'])} chats, {differ} differ")
    print(f"{total} cases, {bad} differ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
