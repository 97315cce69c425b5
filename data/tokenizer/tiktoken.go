package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	loader "github.com/pkoukk/tiktoken-go-loader"
)

// tiktokenSpec describes one of OpenAI's tiktoken encodings: its split
// pattern and special tokens (the ranks ship in tiktoken-go-loader).
type tiktokenSpec struct {
	file     string
	pattern  string
	specials map[string]int
}

const (
	gpt2Split   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	cl100kSplit = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	o200kSplit  = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

var tiktokenSpecs = map[string]tiktokenSpec{
	"r50k_base": {"r50k_base.tiktoken", gpt2Split, map[string]int{"<|endoftext|>": 50256}},
	"p50k_base": {"p50k_base.tiktoken", gpt2Split, map[string]int{"<|endoftext|>": 50256}},
	"cl100k_base": {"cl100k_base.tiktoken", cl100kSplit, map[string]int{
		"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
		"<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}},
	"o200k_base": {"o200k_base.tiktoken", o200kSplit, map[string]int{
		"<|endoftext|>": 199999, "<|endofprompt|>": 200018}},
}

// TiktokenEncodings lists the encodings Tiktoken accepts.
func TiktokenEncodings() []string {
	names := make([]string, 0, len(tiktokenSpecs))
	for n := range tiktokenSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var (
	tiktokenMu    sync.Mutex
	tiktokenCache = map[string]*Tokenizer{}
)

// Tiktoken returns one of OpenAI's encodings (cl100k_base, o200k_base,
// r50k_base, p50k_base) as a Tokenizer, built from the rank files compiled
// into github.com/pkoukk/tiktoken-go-loader: nothing is downloaded.
//
// tiktoken's algorithm is byte-level BPE where the pair to merge next is the
// one whose concatenation has the lowest rank, and a piece that is a token
// is never split; that is our BPE with ignore_merges and a merge for every
// way of splitting each token into two tokens, ranked by the token. The
// tests check the ids against tiktoken-go on a corpus. Special tokens
// written in the text are matched (tiktoken's allowed_special="all").
// Instances are cached: building o200k_base takes about a second.
func Tiktoken(name string) (*Tokenizer, error) {
	tiktokenMu.Lock()
	defer tiktokenMu.Unlock()
	if t, ok := tiktokenCache[name]; ok {
		return t, nil
	}
	spec, ok := tiktokenSpecs[name]
	if !ok {
		return nil, fmt.Errorf("tiktoken: unknown encoding %q (have %s)", name, strings.Join(TiktokenEncodings(), ", "))
	}
	ranks, err := loader.NewOfflineLoader().LoadTiktokenBpe(spec.file)
	if err != nil {
		return nil, fmt.Errorf("tiktoken %s: %w", name, err)
	}
	t, err := newTiktoken(ranks, spec)
	if err != nil {
		return nil, fmt.Errorf("tiktoken %s: %w", name, err)
	}
	t.hash = "tiktoken:" + name
	tiktokenCache[name] = t
	return t, nil
}

func newTiktoken(ranks map[string]int, spec tiktokenSpec) (*Tokenizer, error) {
	m := &bpe{unk: -1, byteLevel: true, ignoreMerges: true, cache: map[string][]wordTok{}}
	m.vocab = make(map[string]int, len(ranks))
	maxID := 0
	for _, id := range ranks {
		maxID = max(maxID, id)
	}
	m.tokens = make([]string, maxID+1)
	spelled := func(b string) string {
		var sb strings.Builder
		for i := 0; i < len(b); i++ {
			sb.WriteString(byteChars[b[i]])
		}
		return sb.String()
	}
	for tok, id := range ranks {
		s := spelled(tok)
		m.vocab[s] = id
		m.tokens[id] = s
	}
	m.merges = make(map[uint64]mergeTo, 2*len(ranks))
	for tok, id := range ranks {
		for k := 1; k < len(tok); k++ {
			a, okA := ranks[tok[:k]]
			b, okB := ranks[tok[k:]]
			if okA && okB {
				m.merges[pairKey(a, b)] = mergeTo{rank: int32(id), id: int32(id)}
			}
		}
	}
	for b := range 256 {
		m.byteIDs[b] = -1
		if id, ok := ranks[string([]byte{byte(b)})]; ok {
			m.byteIDs[b] = id
		}
	}
	re, err := compileRegex(spec.pattern)
	if err != nil {
		return nil, err
	}
	re.where = "the pattern of " + spec.file
	t := &Tokenizer{
		model:     m,
		pre:       splitPre{m: re, behavior: isolated},
		dec:       byteLevelDecoder{},
		addedByID: map[int]*AddedToken{},
		addedByS:  map[string]*AddedToken{},
		bos:       -1, eos: -1, pad: -1,
	}
	for s, id := range spec.specials {
		t.added = append(t.added, &AddedToken{ID: id, Content: s, Special: true})
	}
	sort.Slice(t.added, func(i, j int) bool { return t.added[i].ID < t.added[j].ID })
	if err := t.indexAdded(); err != nil {
		return nil, err
	}
	t.eos = spec.specials["<|endoftext|>"]
	t.cuts = t.canCut() // as Load decides it
	return t, nil
}
