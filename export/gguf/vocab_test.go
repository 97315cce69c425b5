package gguf

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
)

// TestSentencePieceVocab: a SentencePiece-style BPE (byte_fallback, ▁ for
// spaces; data/tokenizer's sp-bpe fixture, 1044 tokens) is written as
// llama.cpp's "llama" vocabulary: scores in merge order, <0xNN> tokens typed
// BYTE, <unk> UNKNOWN, <s> and </s> CONTROL, no merges, and add_bos_token
// from what the post-processor does (it prepends <s>).
func TestSentencePieceVocab(t *testing.T) {
	tok, err := tokenizer.Load(filepath.Join("..", "..", "data", "tokenizer", "testdata", "sp-bpe"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.Load(writeRandomModel(t, map[string]any{"vocab_size": 1044}), nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildModel(context.Background(), m, tok, Options{FileType: FileF16}, "sp")
	if err != nil {
		t.Fatal(err)
	}
	kv := map[string]any{}
	for _, p := range b.Metadata() {
		kv[p.Key] = p.Value
	}
	if kv["tokenizer.ggml.model"] != "llama" || kv["tokenizer.ggml.pre"] != "default" {
		t.Fatalf("model %v pre %v", kv["tokenizer.ggml.model"], kv["tokenizer.ggml.pre"])
	}
	if _, ok := kv["tokenizer.ggml.merges"]; ok {
		t.Fatal("merges written for a SentencePiece vocabulary")
	}
	toks := kv["tokenizer.ggml.tokens"].([]string)
	types := kv["tokenizer.ggml.token_type"].([]int32)
	scores := kv["tokenizer.ggml.scores"].([]float32)
	if len(toks) != 1044 || len(types) != 1044 || len(scores) != 1044 {
		t.Fatalf("%d tokens, %d types, %d scores", len(toks), len(types), len(scores))
	}
	if toks[3] != "<0x00>" || types[3] != TokenByte || types[0] != TokenUnknown || types[1] != TokenControl || types[2] != TokenControl {
		t.Fatalf("tokens %q types %v", toks[:4], types[:4])
	}
	for k, want := range map[string]uint32{"tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0} {
		if kv[k] != want {
			t.Errorf("%s = %v, want %d", k, kv[k], want)
		}
	}
	if kv["tokenizer.ggml.add_bos_token"] != true || kv["tokenizer.ggml.add_eos_token"] != false {
		t.Errorf("add_bos %v add_eos %v", kv["tokenizer.ggml.add_bos_token"], kv["tokenizer.ggml.add_eos_token"])
	}
	// The first merge's result outranks the second's, and both outrank a
	// token no merge makes.
	merges := tok.Merges()
	first, _ := tok.TokenToID(merges[0][0] + merges[0][1])
	second, _ := tok.TokenToID(merges[1][0] + merges[1][1])
	if !(scores[first] > scores[second] && scores[second] > scores[3]) {
		t.Fatalf("scores: first merge %v, second %v, byte token %v", scores[first], scores[second], scores[3])
	}
}

func TestPreTokenizerNames(t *testing.T) {
	for dir, want := range map[string]string{
		filepath.Join("..", "..", "assets", "models", "tiny-base"):           "gpt-2",
		filepath.Join("..", "..", "data", "tokenizer", "testdata", "qwen3"):  "qwen2",
		filepath.Join("..", "..", "data", "tokenizer", "testdata", "sp-bpe"): "default",
	} {
		tok, err := tokenizer.Load(testutil.Inflate(t, dir)) // qwen3's vocabulary is committed zstd-compressed
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := PreTokenizer(tok); got != want {
			t.Errorf("%s: pre-tokenizer %q, want %q", dir, got, want)
		}
	}
}
