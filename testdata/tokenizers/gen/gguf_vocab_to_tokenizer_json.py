"""Builds a Llama-style SentencePiece tokenizer.json from the vocabulary of a
llama.cpp GGUF file (tokenizer.ggml.model "llama": pieces, scores, token
types), the way transformers turns such a GGUF into a fast tokenizer
(transformers/integrations/ggml.py, GGUFLlamaConverter, whose merges come
from tokenizers' SentencePieceExtractor: every split of a piece into two
pieces of the vocabulary, ranked by the piece's score).

Used for Phi-3, whose tokenizer.json no package here ships: llama.cpp's
models/ggml-vocab-phi-3.gguf holds Phi-3-mini's vocabulary. The added
tokens get the flags of Phi-3-mini-instruct's tokenizer_config.json
(added_tokens_decoder: role tokens and placeholders rstrip, </s> rstrip and
not special).

    python3 gguf_vocab_to_tokenizer_json.py <vocab.gguf> <out folder>
"""
import json
import os
import struct
import sys

SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf_kv(path):
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, data, pos)[0]
        pos += struct.calcsize(fmt)
        return v

    def string():
        nonlocal pos
        n = take("<Q")
        s = data[pos:pos + n].decode("utf-8")
        pos += n
        return s

    def value(t):
        if t in SCALAR:
            return take(SCALAR[t])
        if t == 8:
            return string()
        if t == 9:
            it, n = take("<I"), take("<Q")
            return [value(it) for _ in range(n)]
        raise ValueError("GGUF value type %d" % t)

    if data[:4] != b"GGUF":
        raise ValueError(path + ": not a GGUF file")
    pos = 4
    take("<I")  # version
    take("<Q")  # tensors
    n_kv = take("<Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("<I"))
    return kv


# Phi-3-mini-instruct's tokenizer_config.json added_tokens_decoder flags.
RSTRIP = {"</s>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"} | {"<|placeholder%d|>" % i for i in range(1, 7)}
NOT_SPECIAL = {"</s>"}


def main():
    gguf, out = sys.argv[1:3]
    kv = read_gguf_kv(gguf)
    if kv["tokenizer.ggml.model"] != "llama":
        raise ValueError("%s: tokenizer.ggml.model %r, want llama" % (gguf, kv["tokenizer.ggml.model"]))
    pieces, scores, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.scores"], kv["tokenizer.ggml.token_type"]
    # llama.cpp pads the vocabulary to the model's embedding rows with
    # [PAD<id>] pieces that the Hugging Face files do not have, and the
    # tokens added after SentencePiece's pieces are only added tokens there.
    n = len(pieces)
    while n and pieces[n - 1] == "[PAD%d]" % (n - 1):
        n -= 1
    pieces, scores, types = pieces[:n], scores[:n], types[:n]
    base = kv.get("tokenizer.ggml.base_vocab_size", 32000)
    vocab = {p: i for i, p in enumerate(pieces[:base])}
    # SentencePieceExtractor.extract(vocab_scores): pieces by score, each
    # one's splits ordered by the ids of their halves, then all merges by
    # the score of the piece they make (a stable sort).
    merges = []
    for piece, score in sorted(zip(pieces[:base], scores[:base]), key=lambda x: -x[1]):
        local = []
        for i in range(1, len(piece)):
            left, right = piece[:i], piece[i:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda x: -x[2])
    added = []
    for i, (p, t) in enumerate(zip(pieces, types)):
        if t in (2, 3, 4):  # unknown, control, user-defined
            added.append({"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": p in RSTRIP,
                          "normalized": False, "special": p not in NOT_SPECIAL})
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [vocab["<s>"]], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[l, r] for l, r, _ in merges]},
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    # Phi-3-mini-instruct's tokenizer_config.json, the keys a tokenizer reads.
    cfg = {"add_bos_token": False, "add_eos_token": False, "bos_token": "<s>", "eos_token": "<|endoftext|>",
           "pad_token": "<|endoftext|>", "unk_token": "<unk>", "clean_up_tokenization_spaces": False,
           "legacy": False, "tokenizer_class": "LlamaTokenizer"}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    print(len(vocab), "pieces,", len(merges), "merges,", len(added), "added tokens")


if __name__ == "__main__":
    main()
