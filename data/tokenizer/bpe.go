package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is the BPE model: a vocabulary, merges ranked by their position in the
// file, and a cache of words already split.
type bpe struct {
	vocab    map[string]int
	tokens   []string // id -> token, "" where the vocabulary has no such id
	merges   map[uint64]mergeTo
	unk      int // -1 when the model has no unk token
	fuseUnk  bool
	fallback bool // SentencePiece byte_fallback: unknown characters become <0xNN> tokens
	prefix   string
	suffix   string
	// ignoreMerges: a word found whole in the vocabulary is one token (Llama-3).
	ignoreMerges bool
	// byteLevel: the pre-tokenizer is ByteLevel, so each byte is one symbol,
	// written as GPT-2's printable character for that byte.
	byteLevel bool
	byteIDs   [256]int // id of each byte's symbol (byte-level) or of <0xNN> (fallback); -1 if absent

	// metaSplit is set when a word may be cut before every "▁" that follows
	// another character without changing the result (see canMetaSplit).
	metaSplit bool
	// cutMeta: no merge joins an ASCII letter to a "▁" after it, so a word
	// cut between them keeps the tokens before the cut (see prefix.go).
	cutMeta bool

	mu    sync.RWMutex
	cache map[string][]wordTok
}

// mergeTo is what a pair of adjacent symbols merges into, and how early.
type mergeTo struct{ rank, id int32 }

// wordTok is one token of a split word; start and end are byte offsets in
// the word.
type wordTok struct{ id, start, end int32 }

// The word cache stops growing at cacheLimit entries and skips long words
// (SentencePiece-style tokenizers have no pre-tokenizer: a whole paragraph
// is one word, not worth keeping).
const (
	cacheLimit   = 1 << 16
	cacheMaxWord = 256
)

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func buildBPE(o jobj, byteLevel bool) (*bpe, error) {
	t, err := o.typ()
	if err != nil {
		return nil, err
	}
	if t != "BPE" && !(t == "" && o.has("merges")) {
		return nil, o.unsupported("model type " + t)
	}
	if o.has("dropout") {
		var d float64
		if err := json.Unmarshal(o.m["dropout"], &d); err != nil {
			return nil, fmt.Errorf("%s: expected a number: %w", o.field("dropout"), err)
		}
		if d != 0 {
			// Dropout is for training tokenizers; HF's encode is deterministic only without it.
			return nil, o.unsupported("BPE dropout")
		}
	}
	m := &bpe{unk: -1, byteLevel: byteLevel, cache: map[string][]wordTok{}}
	if err := json.Unmarshal(o.m["vocab"], &m.vocab); err != nil || m.vocab == nil {
		return nil, fmt.Errorf("%s: expected an object of token -> id: %v", o.field("vocab"), err)
	}
	maxID := -1
	for tok, id := range m.vocab {
		// Ids index a table: they must be dense (they are in every real
		// vocabulary), or a single huge id would allocate gigabytes.
		if id < 0 || id >= 2*len(m.vocab)+1024 {
			return nil, fmt.Errorf("%s: token %q has id %d, out of range for %d tokens", o.field("vocab"), tok, id, len(m.vocab))
		}
		maxID = max(maxID, id)
	}
	m.tokens = make([]string, maxID+1)
	for tok, id := range m.vocab {
		// An empty token could never be matched, and two tokens with one id
		// would make decoding depend on map order.
		if tok == "" {
			return nil, fmt.Errorf("%s: empty token (id %d)", o.field("vocab"), id)
		}
		if prev := m.tokens[id]; prev != "" {
			a, b := min(prev, tok), max(prev, tok)
			return nil, fmt.Errorf("%s: tokens %q and %q share id %d", o.field("vocab"), a, b, id)
		}
		m.tokens[id] = tok
	}
	if m.fuseUnk, err = o.boolean("fuse_unk", false); err != nil {
		return nil, err
	}
	if m.fallback, err = o.boolean("byte_fallback", false); err != nil {
		return nil, err
	}
	if m.ignoreMerges, err = o.boolean("ignore_merges", false); err != nil {
		return nil, err
	}
	if m.prefix, err = o.str("continuing_subword_prefix", ""); err != nil {
		return nil, err
	}
	if m.suffix, err = o.str("end_of_word_suffix", ""); err != nil {
		return nil, err
	}
	unk, err := o.str("unk_token", "")
	if err != nil {
		return nil, err
	}
	if unk != "" {
		id, ok := m.vocab[unk]
		if !ok {
			return nil, fmt.Errorf("%s: unk token %q is not in the vocabulary", o.field("unk_token"), unk)
		}
		m.unk = id
	}
	if err := m.readMerges(o); err != nil {
		return nil, err
	}
	m.metaSplit = !byteLevel && m.canMetaSplit()
	m.cutMeta = !byteLevel && !m.ignoreMerges && m.canCutMeta()
	for b := range 256 {
		m.byteIDs[b] = -1
		name := fmt.Sprintf("<0x%02X>", b)
		if byteLevel {
			name = byteChars[b]
		}
		if id, ok := m.vocab[name]; ok {
			m.byteIDs[b] = id
		}
	}
	return m, nil
}

// readMerges accepts both layouts: "a b" strings (tokenizers < 0.20) and
// ["a", "b"] pairs (newer files, which allow spaces inside tokens).
func (m *bpe) readMerges(o jobj) error {
	raw := o.m["merges"]
	var pairs [][2]string
	if !isNull(raw) {
		var pairList [][]string
		var strList []string
		// One decode of the whole list: per-entry decoding costs seconds
		// on a 150k-merge vocabulary. Its first entry says which layout
		// it is, so that a list of the other is not decoded twice.
		body := bytes.TrimLeft(bytes.TrimPrefix(bytes.TrimSpace(raw), []byte("[")), " \t\r\n")
		asPairs := len(body) > 0 && body[0] == '['
		switch {
		case !asPairs && json.Unmarshal(raw, &strList) == nil:
			pairs = make([][2]string, len(strList))
			for i, s := range strList {
				a, b, ok := strings.Cut(s, " ")
				if !ok {
					return fmt.Errorf("%s[%d]: expected \"a b\", got %q", o.field("merges"), i, s)
				}
				pairs[i] = [2]string{a, b}
			}
		case asPairs && json.Unmarshal(raw, &pairList) == nil:
			pairs = make([][2]string, len(pairList))
			for i, p := range pairList {
				if len(p) != 2 {
					return fmt.Errorf("%s[%d]: expected [\"a\", \"b\"], got %d strings", o.field("merges"), i, len(p))
				}
				pairs[i] = [2]string{p[0], p[1]}
			}
		default:
			return fmt.Errorf("%s: expected a list of \"a b\" strings or of [\"a\", \"b\"] pairs", o.field("merges"))
		}
	}
	m.merges = make(map[uint64]mergeTo, len(pairs))
	for rank, p := range pairs {
		a, b := p[0], p[1]
		path := fmt.Sprintf("%s[%d]", o.field("merges"), rank)
		ia, oka := m.vocab[a]
		ib, okb := m.vocab[b]
		if !oka || !okb {
			return fmt.Errorf("%s: %q or %q is not in the vocabulary", path, a, b)
		}
		// The merged token drops the prefix of its second half, as tokenizers does.
		merged := a + strings.TrimPrefix(b, m.prefix)
		id, ok := m.vocab[merged]
		if !ok {
			return fmt.Errorf("%s: merged token %q is not in the vocabulary", path, merged)
		}
		k := pairKey(ia, ib)
		if _, dup := m.merges[k]; !dup { // the first (lowest) rank wins
			m.merges[k] = mergeTo{rank: int32(rank), id: int32(id)}
		}
	}
	return nil
}

// metaspace is SentencePiece's word-start mark.
const metaspace = "▁"

// canMetaSplit reports whether no token holds "▁" right after another
// character ("a▁", but "▁▁" is fine) and "▁" is a token. SentencePiece-style
// tokenizers have no pre-tokenizer, so a whole paragraph is one BPE word;
// when no token can span the boundary before a "▁", no merge can either
// (a merge's result must be a token), merges on the two sides commute, and
// the word can be split there: each part is short and hits the word cache.
func (m *bpe) canMetaSplit() bool {
	if _, ok := m.vocab[metaspace]; !ok || m.prefix != "" || m.suffix != "" {
		return false
	}
	for tok := range m.vocab {
		for i := 1; i < len(tok); i++ {
			if strings.HasPrefix(tok[i:], metaspace) && !strings.HasSuffix(tok[:i], metaspace) {
				return false
			}
		}
	}
	return true
}

// canCutMeta reports whether "▁" is a token and no token holds an ASCII
// letter followed by "▁" (Gemma 3's vocabulary holds ">▁</", which rules out
// metaSplit but not this). A symbol across the boundary between a letter
// and the "▁" after it would be such a token, so no merge crosses it, the
// merges on either side commute, and the tokens of the word before the
// boundary are those of that part alone.
func (m *bpe) canCutMeta() bool {
	if _, ok := m.vocab[metaspace]; !ok || m.prefix != "" || m.suffix != "" {
		return false
	}
	for tok := range m.vocab {
		for i := 1; i < len(tok); i++ {
			if isASCIILetter(tok[i-1]) && strings.HasPrefix(tok[i:], metaspace) {
				return false
			}
		}
	}
	return true
}

// tokenize splits one pre-tokenized word. The result is shared with the
// cache: callers must not modify it.
func (m *bpe) tokenize(word string) []wordTok {
	m.mu.RLock()
	toks, ok := m.cache[word]
	m.mu.RUnlock()
	if ok {
		return toks
	}
	toks = m.split(word)
	if len(word) >= cacheMaxWord {
		return toks
	}
	m.mu.Lock()
	if len(m.cache) < cacheLimit {
		// word is a slice of the caller's text: a copy keeps the cache from
		// pinning whole documents in memory.
		m.cache[strings.Clone(word)] = toks
	}
	m.mu.Unlock()
	return toks
}

// symbol is a node of the doubly linked list of a word's current symbols.
type symbol struct {
	id         int
	start, end int
	prev, next int
}

func (m *bpe) split(word string) []wordTok {
	if m.ignoreMerges {
		if id, ok := m.vocab[m.wordForm(word)]; ok {
			return []wordTok{{int32(id), 0, int32(len(word))}}
		}
	}
	syms := m.initialSymbols(word)
	if len(syms) == 0 {
		return nil
	}
	m.merge(syms)
	var out []wordTok
	for i := 0; i != -1; i = syms[i].next {
		s := syms[i]
		out = append(out, wordTok{int32(s.id), int32(s.start), int32(s.end)})
	}
	return out
}

// wordForm is the word as the vocabulary spells it.
func (m *bpe) wordForm(word string) string {
	if !m.byteLevel {
		return word
	}
	var sb strings.Builder
	for i := 0; i < len(word); i++ {
		sb.WriteString(byteChars[word[i]])
	}
	return sb.String()
}

// initialSymbols makes one symbol per character (per byte when byte-level),
// resolving unknown characters to byte-fallback tokens or the unk token, or
// dropping them when the model has neither (as tokenizers does).
func (m *bpe) initialSymbols(word string) []symbol {
	syms := make([]symbol, 0, len(word))
	push := func(id, start, end int) {
		syms = append(syms, symbol{id: id, start: start, end: end, prev: len(syms) - 1, next: -1})
	}
	plain := m.prefix == "" && m.suffix == ""
	var nameBuf []byte
	for i := 0; i < len(word); {
		size := 1
		if !m.byteLevel {
			_, size = utf8.DecodeRuneInString(word[i:])
		}
		end := i + size
		var id int
		var ok bool
		if m.byteLevel && plain {
			id = m.byteIDs[word[i]]
			ok = id >= 0
		} else {
			nameBuf = nameBuf[:0]
			if i > 0 {
				nameBuf = append(nameBuf, m.prefix...)
			}
			if m.byteLevel {
				nameBuf = append(nameBuf, byteChars[word[i]]...)
			} else {
				nameBuf = append(nameBuf, word[i:end]...)
			}
			if end == len(word) {
				nameBuf = append(nameBuf, m.suffix...)
			}
			id, ok = m.vocab[string(nameBuf)]
		}
		switch {
		case ok:
			push(id, i, end)
		case m.fallback && !m.byteLevel && m.allBytes(word[i:end]):
			for k := i; k < end; k++ {
				push(m.byteIDs[word[k]], i, end)
			}
		case m.unk >= 0:
			if n := len(syms); m.fuseUnk && n > 0 && syms[n-1].id == m.unk {
				syms[n-1].end = end
			} else {
				push(m.unk, i, end)
			}
		}
		i = end
	}
	for i := range syms {
		syms[i].prev = i - 1
		syms[i].next = i + 1
	}
	if n := len(syms); n > 0 {
		syms[n-1].next = -1
	}
	return syms
}

func (m *bpe) allBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if m.byteIDs[s[i]] < 0 {
			return false
		}
	}
	return true
}

// candidate is a possible merge of the symbol at pos with its successor.
type candidate struct {
	pos  int
	rank int32
	id   int32
}

// candidates is a binary min-heap ordered by (rank, pos), written out
// rather than through container/heap, whose interface boxes every pushed
// candidate (an allocation per merge).
type candidates []candidate

func (h candidates) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *candidates) push(c candidate) {
	*h = append(*h, c)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *candidates) pop() candidate {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && q.less(l, m) {
			m = l
		}
		if r < n && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// merge applies merges lowest rank first (leftmost on ties), the order
// tokenizers' BPE uses; stale candidates are skipped when popped.
func (m *bpe) merge(syms []symbol) {
	h := make(candidates, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if mt, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h.push(candidate{i, mt.rank, mt.id})
		}
	}
	for len(h) > 0 {
		c := h.pop()
		s := &syms[c.pos]
		if s.end == s.start || s.next == -1 {
			continue // merged away already
		}
		nx := &syms[s.next]
		if mt, ok := m.merges[pairKey(s.id, nx.id)]; !ok || mt.id != c.id || mt.rank != c.rank {
			continue // the pair changed since this candidate was pushed
		}
		s.id = int(c.id)
		s.end = nx.end
		nx.start = nx.end // mark removed
		s.next = nx.next
		if s.next != -1 {
			syms[s.next].prev = c.pos
		}
		if s.prev != -1 {
			p := syms[s.prev]
			if mt, ok := m.merges[pairKey(p.id, s.id)]; ok {
				h.push(candidate{s.prev, mt.rank, mt.id})
			}
		}
		if s.next != -1 {
			if mt, ok := m.merges[pairKey(s.id, syms[s.next].id)]; ok {
				h.push(candidate{c.pos, mt.rank, mt.id})
			}
		}
	}
}
