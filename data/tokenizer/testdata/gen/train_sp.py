# Train a small SentencePiece-style BPE (Llama-2 layout) on the quiz corpus
# and the tiny-base README, for tests. Deterministic.
import json, collections, sys
texts = []
for f in ["africa","america","arith","asia","elements","europe"]:
    texts.append(open("/work/shared/corpora/quiz/"+f, encoding="utf-8").read())
texts.append(open("/work/shared/models/tiny-base/README.md", encoding="utf-8").read())
text = "\n".join(texts)
# Alphabet: printable ASCII only, so newlines, tabs and non-ASCII go through byte fallback.
words = collections.Counter()
for line in text.split("\n"):
    for w in ("▁" + line.replace(" ", "▁")).split("▁"):
        if w:
            words["▁" + w] += 1
alphabet = sorted({c for w in words for c in w if c == "▁" or (32 < ord(c) < 127)})
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for b in range(256):
    vocab["<0x%02X>" % b] = len(vocab)
for c in alphabet:
    vocab[c] = len(vocab)
splits = {w: [c for c in w] for w in words}
merges = []
N = int(sys.argv[1]) if len(sys.argv) > 1 else 700
while len(merges) < N:
    pairs = collections.Counter()
    for w, n in words.items():
        s = splits[w]
        for a, b in zip(s, s[1:]):
            if a in vocab and b in vocab:
                pairs[(a, b)] += n
    if not pairs:
        break
    (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
    merges.append([a, b])
    if a + b not in vocab:
        vocab[a + b] = len(vocab)
    for w in words:
        s = splits[w]; out = []; i = 0
        while i < len(s):
            if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                out.append(a + b); i += 2
            else:
                out.append(s[i]); i += 1
        splits[w] = out
def added(i, c):
    return {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
         "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
         "vocab": vocab, "merges": merges}
template = {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
legacy = {"version": "1.0", "truncation": None, "padding": None,
          "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
          "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                         {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
          "pre_tokenizer": None, "post_processor": template,
          "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                      {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
          "model": model}
meta = dict(legacy)
meta["normalizer"] = None
meta["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
meta["decoder"] = {"type": "Sequence", "decoders": [{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False},
                   {"type": "ByteFallback"}, {"type": "Fuse"}]}
cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
       "unk_token": "<unk>", "pad_token": None, "legacy": True, "tokenizer_class": "LlamaTokenizer"}
for name, tj in [("sp-bpe", legacy), ("sp-metaspace", meta)]:
    import os
    os.makedirs(name, exist_ok=True)
    json.dump(tj, open(name + "/tokenizer.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)
    json.dump(cfg, open(name + "/tokenizer_config.json", "w", encoding="utf-8"), ensure_ascii=False, indent=2)
print(len(vocab), len(merges))
