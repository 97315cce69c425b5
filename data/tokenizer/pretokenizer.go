package tokenizer

import (
	"fmt"
	"unicode"
)

// preTokenizer splits a piece into smaller pieces, handing each to emit in
// order (a callback rather than a slice: encoding allocates nothing per piece).
// b bounds the time of its regexes (see budget.go).
type preTokenizer interface {
	split(p nstr, emit func(nstr), b *budget) error
}

// splitBehavior says what happens to the delimiters a pattern matched.
type splitBehavior int

const (
	removed splitBehavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

func parseBehavior(o jobj, def splitBehavior) (splitBehavior, error) {
	s, err := o.str("behavior", "")
	if err != nil {
		return 0, err
	}
	switch s {
	case "":
		return def, nil
	case "Removed":
		return removed, nil
	case "Isolated":
		return isolated, nil
	case "MergedWithPrevious":
		return mergedWithPrevious, nil
	case "MergedWithNext":
		return mergedWithNext, nil
	case "Contiguous":
		return contiguous, nil
	}
	return 0, fmt.Errorf("%s: unknown split behavior %q", o.field("behavior"), s)
}

// gpt2Pattern is the regex of tokenizers' ByteLevel pre-tokenizer (use_regex).
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// buildPreTokenizer also reports whether a ByteLevel pre-tokenizer is
// present: the model then sees each byte as one symbol (see bpe.go).
func buildPreTokenizer(o jobj) (preTokenizer, bool, error) {
	t, err := o.typ()
	if err != nil {
		return nil, false, err
	}
	switch t {
	case "Sequence":
		subs, err := o.objList("pretokenizers")
		if err != nil {
			return nil, false, err
		}
		var seq seqPre
		byteLevel := false
		for i, s := range subs {
			p, bl, err := buildPreTokenizer(s)
			if err != nil {
				return nil, false, err
			}
			if bl && i != len(subs)-1 {
				// Later pre-tokenizers would see byte-mapped text; no known
				// tokenizer does this and we map bytes inside the model.
				return nil, false, s.unsupported("ByteLevel before other pre-tokenizers in a Sequence")
			}
			byteLevel = byteLevel || bl
			if b, ok := p.(byteLevelPre); ok && !b.prefixSpace && b.re == nil {
				continue // only maps bytes, which the model does
			}
			seq = append(seq, p)
		}
		if len(seq) == 1 {
			return seq[0], byteLevel, nil
		}
		return seq, byteLevel, nil
	case "ByteLevel":
		prefix, err := o.boolean("add_prefix_space", true)
		if err != nil {
			return nil, false, err
		}
		useRegex, err := o.boolean("use_regex", true)
		if err != nil {
			return nil, false, err
		}
		bl := byteLevelPre{prefixSpace: prefix}
		if useRegex {
			if bl.re, err = compileRegex(gpt2Pattern); err != nil {
				return nil, false, err
			}
			bl.re.where = o.name()
		}
		return bl, true, nil
	case "Split":
		m, err := buildMatcher(o, "pattern")
		if err != nil {
			return nil, false, err
		}
		beh, err := parseBehavior(o, removed)
		if err != nil {
			return nil, false, err
		}
		inv, err := o.boolean("invert", false)
		if err != nil {
			return nil, false, err
		}
		return splitPre{m: m, behavior: beh, invert: inv}, false, nil
	case "Digits":
		ind, err := o.boolean("individual_digits", false)
		if err != nil {
			return nil, false, err
		}
		beh := contiguous
		if ind {
			beh = isolated
		}
		return splitPre{m: charMatcher(unicode.IsNumber), behavior: beh}, false, nil
	case "Metaspace":
		return buildMetaspace(o)
	case "Whitespace":
		re, err := compileRegex(`\w+|[^\w\s]+`)
		if err != nil {
			return nil, false, err
		}
		re.where = o.name()
		return splitPre{m: re, behavior: removed, invert: true}, false, nil
	case "WhitespaceSplit":
		return splitPre{m: charMatcher(unicode.IsSpace), behavior: removed}, false, nil
	case "Punctuation":
		beh, err := parseBehavior(o, isolated)
		if err != nil {
			return nil, false, err
		}
		return splitPre{m: charMatcher(isPunct), behavior: beh}, false, nil
	case "BertPreTokenizer":
		return seqPre{
			splitPre{m: charMatcher(unicode.IsSpace), behavior: removed},
			splitPre{m: charMatcher(isPunct), behavior: isolated},
		}, false, nil
	case "CharDelimiterSplit":
		d, err := o.oneChar("delimiter", 0)
		if err != nil {
			return nil, false, err
		}
		return splitPre{m: charMatcher(func(r rune) bool { return r == d }), behavior: removed}, false, nil
	case "":
		return nil, false, fmt.Errorf("%s: missing \"type\"", o.path)
	default:
		return nil, false, o.unsupported("pre_tokenizer type " + t)
	}
}

func isPunct(r rune) bool {
	return (r < 128 && unicode.IsPunct(r)) || (r < 128 && unicode.IsSymbol(r)) || unicode.IsPunct(r)
}

type seqPre []preTokenizer

func (s seqPre) split(p nstr, emit func(nstr), b *budget) error {
	return s.splitFrom(0, p, emit, b)
}

func (s seqPre) splitFrom(i int, p nstr, emit func(nstr), b *budget) error {
	if i == len(s) {
		emit(p)
		return nil
	}
	var err error
	if e := s[i].split(p, func(q nstr) {
		if err == nil {
			err = s.splitFrom(i+1, q, emit, b)
		}
	}, b); e != nil {
		return e
	}
	return err
}

type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (sp splitPre) split(p nstr, emit func(nstr), b *budget) error {
	ms, err := sp.m.find(p.s, b)
	if err != nil {
		return err
	}
	splitByMatches(p, ms, sp.behavior, sp.invert, emit)
	return nil
}

// splitByMatches follows tokenizers' NormalizedString::split: the string is
// cut into matched and unmatched ranges, the behavior decides what becomes
// of the matched ones, and empty pieces are dropped.
func splitByMatches(p nstr, ms [][2]int, beh splitBehavior, invert bool, emit func(nstr)) {
	if !invert && (beh == isolated || beh == removed) {
		// The common cases, without building the list of parts.
		prev := 0
		for _, m := range ms {
			if prev < m[0] {
				emit(p.sub(prev, m[0]))
			}
			if beh == isolated && m[0] < m[1] {
				emit(p.sub(m[0], m[1]))
			}
			prev = m[1]
		}
		if prev < len(p.s) {
			emit(p.sub(prev, len(p.s)))
		}
		return
	}
	type part struct {
		r     [2]int
		match bool
	}
	parts := make([]part, 0, 2*len(ms)+1)
	prev := 0
	for _, m := range ms {
		if prev != m[0] {
			parts = append(parts, part{[2]int{prev, m[0]}, invert})
		}
		parts = append(parts, part{m, !invert})
		prev = m[1]
	}
	if prev != len(p.s) {
		parts = append(parts, part{[2]int{prev, len(p.s)}, invert})
	}
	var keep [][2]int
	switch beh {
	case removed:
		for _, x := range parts {
			if !x.match {
				keep = append(keep, x.r)
			}
		}
	case isolated:
		for _, x := range parts {
			keep = append(keep, x.r)
		}
	case mergedWithPrevious:
		prevMatch := false
		for _, x := range parts {
			if x.match && !prevMatch && len(keep) > 0 {
				keep[len(keep)-1][1] = x.r[1]
			} else {
				keep = append(keep, x.r)
			}
			prevMatch = x.match
		}
	case mergedWithNext:
		prevMatch := false
		for i := len(parts) - 1; i >= 0; i-- {
			x := parts[i]
			if x.match && !prevMatch && len(keep) > 0 {
				keep[len(keep)-1][0] = x.r[0]
			} else {
				keep = append(keep, x.r)
			}
			prevMatch = x.match
		}
		for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
			keep[i], keep[j] = keep[j], keep[i]
		}
	case contiguous:
		prevMatch := false
		for i, x := range parts {
			if i > 0 && x.match == prevMatch {
				keep[len(keep)-1][1] = x.r[1]
			} else {
				keep = append(keep, x.r)
			}
			prevMatch = x.match
		}
	}
	for _, r := range keep {
		if r[0] < r[1] {
			emit(p.sub(r[0], r[1]))
		}
	}
}

// byteLevelPre is GPT-2's pre-tokenizer: an optional leading space and the
// GPT-2 regex. The byte-to-character mapping itself happens in the model,
// which is equivalent and avoids rewriting (and re-aligning) every piece.
type byteLevelPre struct {
	prefixSpace bool
	re          *regex
}

func (bl byteLevelPre) split(p nstr, emit func(nstr), b *budget) error {
	if bl.prefixSpace && p.s != "" && p.s[0] != ' ' {
		p.prepend(" ")
	}
	if bl.re == nil {
		if p.s != "" {
			emit(p)
		}
		return nil
	}
	ms, err := bl.re.find(p.s, b)
	if err != nil {
		return err
	}
	splitByMatches(p, ms, isolated, false, emit)
	return nil
}

// metaspacePre is SentencePiece's whitespace handling: spaces become the
// replacement character (▁), one is prepended, and pieces start at each ▁.
type metaspacePre struct {
	repl    string
	prepend string // "always", "first" or "never"
	splitOn bool
}

func buildMetaspace(o jobj) (preTokenizer, bool, error) {
	r, err := o.oneChar("replacement", '▁')
	if err != nil {
		return nil, false, err
	}
	m := metaspacePre{repl: string(r)}
	if m.splitOn, err = o.boolean("split", true); err != nil {
		return nil, false, err
	}
	if o.has("prepend_scheme") {
		if m.prepend, err = o.str("prepend_scheme", ""); err != nil {
			return nil, false, err
		}
	} else {
		// Files older than tokenizers 0.14 carry add_prefix_space instead.
		add, err := o.boolean("add_prefix_space", true)
		if err != nil {
			return nil, false, err
		}
		m.prepend = "never"
		if add {
			m.prepend = "always"
		}
	}
	switch m.prepend {
	case "always", "first", "never":
	default:
		return nil, false, fmt.Errorf("%s: unknown prepend_scheme %q", o.field("prepend_scheme"), m.prepend)
	}
	return m, false, nil
}

func (m metaspacePre) split(p nstr, emit func(nstr), _ *budget) error {
	ms, _ := literal(" ").find(p.s, nil)
	p.replaceAll(ms, m.repl)
	if p.s != "" && (len(p.s) < len(m.repl) || p.s[:len(m.repl)] != m.repl) {
		first := p.at(0).start == 0
		if m.prepend == "always" || (m.prepend == "first" && first) {
			p.prepend(m.repl)
		}
	}
	if !m.splitOn {
		if p.s != "" {
			emit(p)
		}
		return nil
	}
	ms, _ = literal(m.repl).find(p.s, nil)
	splitByMatches(p, ms, mergedWithNext, false, emit)
	return nil
}
