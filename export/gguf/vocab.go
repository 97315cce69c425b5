package gguf

import (
	"fmt"
	"strings"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/nn"
)

// Pre-tokenizer regular expressions llama.cpp knows by name
// (tokenizer.ggml.pre). The converter identifies a tokenizer by hashing its
// output on a test text; we match the Split patterns instead, which is what
// that hash stands for in these families.
var knownPre = map[string]string{
	// GPT-2's ByteLevel(use_regex=true). llama.cpp calls it "gpt-2"
	// (llama-vocab.cpp); "gpt2" is the tokenizer model's name, not this.
	`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`: "gpt-2",
	// Qwen2 / Qwen2.5 / Qwen3.
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "qwen2",
	// Llama 3 (digits in groups of up to three).
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "llama-bpe",
}

// PreTokenizer returns llama.cpp's name for tok's pre-tokenizer, or
// "default" (llama.cpp's generic splitting) when the patterns are not ones
// it knows; ok is false then, so callers can warn.
func PreTokenizer(tok *tokenizer.Tokenizer) (name string, ok bool) {
	pats := tok.PreTokenizerPatterns()
	if len(pats) == 0 {
		return "default", false
	}
	// ByteLevel after a Split adds no regex of its own when use_regex is
	// false (Qwen, Llama 3); with it, GPT-2's pattern comes last.
	name, ok = knownPre[pats[0]]
	if !ok {
		return "default", false
	}
	return name, true
}

// setVocab writes the tokenizer.* keys as convert_hf_to_gguf.py does:
// byte-level BPE as model "gpt2" with its merges; SentencePiece-style BPE
// (byte_fallback) as model "llama" with scores. The token list is padded to
// the embedding's vocab_size with "[PAD<id>]" tokens of type UNUSED, since
// llama.cpp sizes token_embd by the list.
func setVocab(b *Builder, tok *tokenizer.Tokenizer, c nn.Config, chatTemplate string) error {
	tokens := tok.Tokens()
	if len(tokens) > c.VocabSize {
		return fmt.Errorf("gguf: the tokenizer has %d tokens, more than config.json's vocab_size %d", len(tokens), c.VocabSize)
	}
	for len(tokens) < c.VocabSize {
		tokens = append(tokens, "")
	}
	special := map[int]bool{}
	added := map[int]bool{}
	for _, a := range tok.AddedTokens() {
		added[a.ID] = true
		special[a.ID] = a.Special
	}
	unk, hasUNK := tok.UNK()
	spm := !tok.IsByteLevel()
	if spm && !tok.HasByteFallback() {
		return fmt.Errorf("gguf: the tokenizer is neither byte-level BPE nor SentencePiece-style BPE with byte_fallback; llama.cpp's gpt2 and llama vocabularies need one of them")
	}
	types := make([]int32, len(tokens))
	for i, t := range tokens {
		switch {
		case t == "":
			tokens[i] = fmt.Sprintf("[PAD%d]", i)
			types[i] = TokenUnused
		case hasUNK && i == unk:
			// Before the added-token cases: SentencePiece lists <unk> among
			// the special tokens, and its own vocabulary types it UNKNOWN.
			types[i] = TokenUnknown
		case added[i] && special[i]:
			types[i] = TokenControl
		case added[i]:
			types[i] = TokenUserDefined
		case spm && isByteToken(t):
			types[i] = TokenByte
		default:
			types[i] = TokenNormal
		}
	}
	if spm {
		b.Set("tokenizer.ggml.model", "llama")
		b.Set("tokenizer.ggml.pre", "default")
	} else {
		pre, _ := PreTokenizer(tok)
		b.Set("tokenizer.ggml.model", "gpt2")
		b.Set("tokenizer.ggml.pre", pre)
	}
	b.Set("tokenizer.ggml.tokens", tokens)
	if spm {
		b.Set("tokenizer.ggml.scores", spmScores(tok, len(tokens)))
	}
	b.Set("tokenizer.ggml.token_type", types)
	if !spm {
		merges := tok.Merges()
		ms := make([]string, len(merges))
		for i, m := range merges {
			if strings.Contains(m[0], " ") || strings.Contains(m[1], " ") {
				return fmt.Errorf("gguf: merge %d (%q, %q) has a space inside a token; GGUF merges are \"a b\" strings", i, m[0], m[1])
			}
			ms[i] = m[0] + " " + m[1]
		}
		b.Set("tokenizer.ggml.merges", ms)
	}
	setID := func(key string, id int, ok bool) {
		if ok && id >= 0 && id < len(tokens) {
			b.Set(key, uint32(id))
		}
	}
	bos, okB, eos, okE := bosEOS(tok, c)
	pad, okP := tok.PAD()
	if !okP && c.PadTokenID >= 0 {
		pad, okP = c.PadTokenID, true
	}
	setID("tokenizer.ggml.bos_token_id", bos, okB)
	setID("tokenizer.ggml.eos_token_id", eos, okE)
	setID("tokenizer.ggml.unknown_token_id", unk, hasUNK)
	setID("tokenizer.ggml.padding_token_id", pad, okP)
	addBOS, addEOS, err := addsSpecial(tok, bos, okB, eos, okE)
	if err != nil {
		return err
	}
	b.Set("tokenizer.ggml.add_bos_token", addBOS)
	b.Set("tokenizer.ggml.add_eos_token", addEOS)
	if chatTemplate != "" {
		b.Set("tokenizer.chat_template", chatTemplate)
	}
	return nil
}

// bosEOS are the BOS and EOS ids the file records: the tokenizer's, else
// the model configuration's.
func bosEOS(tok *tokenizer.Tokenizer, c nn.Config) (bos int, okB bool, eos int, okE bool) {
	bos, okB = tok.BOS()
	if !okB && c.BOSTokenID >= 0 {
		bos, okB = c.BOSTokenID, true
	}
	eos, okE = tok.EOS()
	if !okE && len(c.EOSTokenIDs) > 0 {
		eos, okE = c.EOSTokenIDs[0], true
	}
	return bos, okB, eos, okE
}

// AddedBOS is the BOS id when the model file says its tokenizer adds one
// (tokenizer.ggml.add_bos_token), else -1: llama.cpp's llama-imatrix and
// llama-perplexity then start every chunk of text with it.
func AddedBOS(tok *tokenizer.Tokenizer, c nn.Config) (int, error) {
	bos, okB, eos, okE := bosEOS(tok, c)
	addBOS, _, err := addsSpecial(tok, bos, okB, eos, okE)
	if err != nil || !addBOS {
		return -1, err
	}
	return bos, nil
}

// addsSpecial finds out whether encoding adds BOS / EOS by encoding a
// letter with and without special tokens: whatever the post-processor and
// tokenizer_config.json say, this is what the Hugging Face tokenizer does.
func addsSpecial(tok *tokenizer.Tokenizer, bos int, okB bool, eos int, okE bool) (addBOS, addEOS bool, err error) {
	with, err := tok.Encode("a", true)
	if err != nil {
		return false, false, fmt.Errorf("gguf: tokenizer: %w", err)
	}
	without, err := tok.Encode("a", false)
	if err != nil {
		return false, false, fmt.Errorf("gguf: tokenizer: %w", err)
	}
	w, wo := with.IDs, without.IDs
	if len(w) > len(wo) && len(w) > 0 {
		addBOS = okB && w[0] == bos && (len(wo) == 0 || wo[0] != bos)
		addEOS = okE && w[len(w)-1] == eos && (len(wo) == 0 || wo[len(wo)-1] != eos)
	}
	return addBOS, addEOS, nil
}

// isByteToken reports SentencePiece's <0xNN> byte tokens.
func isByteToken(t string) bool {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return false
	}
	for _, c := range t[3:5] {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// spmScores gives llama.cpp's SentencePiece tokenizer, which merges the
// adjacent pair whose result has the highest score, the order of the BPE
// merges: a token made by merge r scores −r; tokens no merge makes score
// below every merge (llama.cpp only merges into tokens of the vocabulary,
// so their exact value only has to lose). The converter's LlamaHfVocab
// writes −1000 for every token, which loses the merge order.
func spmScores(tok *tokenizer.Tokenizer, n int) []float32 {
	ranks := tok.MergeRanks()
	merges := len(tok.Merges())
	out := make([]float32, n)
	for i := range out {
		if i < len(ranks) && ranks[i] >= 0 {
			out[i] = -float32(ranks[i])
		} else {
			out[i] = -float32(merges + i)
		}
	}
	return out
}
