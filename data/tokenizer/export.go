package tokenizer

import "sort"

// This file gives exporters (export/gguf) read access to the vocabulary as
// other runtimes need it: llama.cpp's GGUF stores the token list, the merges
// and the pre-tokenizer's regular expressions rather than a tokenizer.json.

// Tokens returns every token string by id, added tokens included, "" where
// no token has that id. The slice is a copy.
func (t *Tokenizer) Tokens() []string {
	n := len(t.model.tokens)
	for _, a := range t.added {
		n = max(n, a.ID+1)
	}
	out := make([]string, n)
	copy(out, t.model.tokens)
	for _, a := range t.added {
		out[a.ID] = a.Content
	}
	return out
}

// Merges returns the BPE merges in rank order (the order of the file; a
// pair listed twice appears once, at its first rank, as it is applied).
func (t *Tokenizer) Merges() [][2]string {
	type ranked struct {
		rank int32
		pair [2]string
	}
	rs := make([]ranked, 0, len(t.model.merges))
	for k, m := range t.model.merges {
		a, b := int(k>>32), int(uint32(k))
		rs = append(rs, ranked{m.rank, [2]string{t.model.tokens[a], t.model.tokens[b]}})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].rank < rs[j].rank })
	out := make([][2]string, len(rs))
	for i, r := range rs {
		out[i] = r.pair
	}
	return out
}

// MergeRanks returns, for each model token id, the rank of the merge that
// produces it, or -1 when no merge does (single characters, bytes, added tokens).
func (t *Tokenizer) MergeRanks() []int {
	out := make([]int, len(t.model.tokens))
	for i := range out {
		out[i] = -1
	}
	for _, m := range t.model.merges {
		if r := out[m.id]; r < 0 || int(m.rank) < r {
			out[m.id] = int(m.rank)
		}
	}
	return out
}

// IsByteLevel reports a GPT-2 style byte-level BPE (tokens spell bytes with
// printable characters).
func (t *Tokenizer) IsByteLevel() bool { return t.model.byteLevel }

// HasByteFallback reports a SentencePiece-style BPE whose unknown
// characters become <0xNN> byte tokens.
func (t *Tokenizer) HasByteFallback() bool { return t.model.fallback }

// UNK returns the unknown token's id.
func (t *Tokenizer) UNK() (int, bool) { return t.model.unk, t.model.unk >= 0 }

// PreTokenizerPatterns returns the regular expressions the pre-tokenizer
// splits with, in order: each Split's pattern source and, for a ByteLevel
// pre-tokenizer with use_regex, GPT-2's pattern. Literal patterns and other
// pre-tokenizers are left out.
func (t *Tokenizer) PreTokenizerPatterns() []string {
	var out []string
	var walk func(p preTokenizer)
	walk = func(p preTokenizer) {
		switch p := p.(type) {
		case seqPre:
			for _, q := range p {
				walk(q)
			}
		case splitPre:
			if r, ok := p.m.(*regex); ok {
				out = append(out, r.src)
			}
		case byteLevelPre:
			if p.re != nil {
				out = append(out, p.re.src)
			}
		}
	}
	walk(t.pre)
	return out
}
