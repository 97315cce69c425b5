package quizgen

import (
	"fmt"
	"strings"
	"unicode"
)

// The BSD quiz(6) data files describe accepted answers with a small
// pattern language:
//
//	{x}     x is optional ("{G{eorge} }Washington" accepts "Washington")
//	[a|b]   one of a, b (used for spellings: "Bra[z|s]il")
//	a|b     at the top of a field or inside {}: either a or b
//
// and fields are separated by ':' with '\' continuing a line. node is the
// parsed form of a pattern.
type node struct {
	lit      string
	optional *alts // {..}
	choice   *alts // [..]
}

type alts struct{ seqs [][]node }

// parsePattern parses one field.
func parsePattern(s string) (*alts, error) {
	a, rest, err := parseAlts(s, 0)
	if err != nil {
		return nil, err
	}
	if rest != len(s) {
		return nil, fmt.Errorf("pattern %q: unexpected %q at %d", s, s[rest], rest)
	}
	return a, nil
}

// parseAlts parses seq ('|' seq)* from s[i:], stopping before '}' or ']'.
func parseAlts(s string, i int) (*alts, int, error) {
	a := &alts{}
	var seq []node
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			seq = append(seq, node{lit: lit.String()})
			lit.Reset()
		}
	}
	for i < len(s) {
		switch c := s[i]; c {
		case '|':
			flush()
			a.seqs = append(a.seqs, seq)
			seq = nil
			i++
		case '}', ']':
			flush()
			a.seqs = append(a.seqs, seq)
			return a, i, nil
		case '{', '[':
			flush()
			inner, j, err := parseAlts(s, i+1)
			if err != nil {
				return nil, 0, err
			}
			want := byte('}')
			if c == '[' {
				want = ']'
			}
			if j >= len(s) || s[j] != want {
				return nil, 0, fmt.Errorf("pattern %q: %q at %d is not closed", s, c, i)
			}
			if c == '{' {
				seq = append(seq, node{optional: inner})
			} else {
				seq = append(seq, node{choice: inner})
			}
			i = j + 1
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	a.seqs = append(a.seqs, seq)
	return a, i, nil
}

// full expands a pattern to its longest reading: optional parts included,
// the first alternative of a top-level or {} choice, and the first
// all-letter alternative of a [] choice (the others spell accents as
// "'e", "e'", "o/").
func (a *alts) full() string { return expandSeq(a.seqs[0]) }

func expandSeq(seq []node) string {
	var b strings.Builder
	for _, n := range seq {
		switch {
		case n.optional != nil:
			b.WriteString(n.optional.full())
		case n.choice != nil:
			b.WriteString(n.choice.plainest())
		default:
			b.WriteString(n.lit)
		}
	}
	return b.String()
}

func (a *alts) plainest() string {
	for _, seq := range a.seqs {
		s := expandSeq(seq)
		if s != "" && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsLetter(r) }) < 0 {
			return s
		}
	}
	return expandSeq(a.seqs[0])
}

// short reads a person's name as "First Last": the leading optional group
// (the first name) in full, later optional groups (middle names,
// suffixes) left out, the fixed text kept.
func (a *alts) short() string {
	seq := a.seqs[0]
	var b strings.Builder
	for i, n := range seq {
		switch {
		case n.optional != nil && i == 0:
			b.WriteString(n.optional.full())
		case n.optional != nil:
		case n.choice != nil:
			b.WriteString(n.choice.plainest())
		default:
			b.WriteString(n.lit)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// readRecords splits a quiz file into records of fields, joining lines
// continued with '\'.
func readRecords(data string) [][]string {
	var recs [][]string
	var cur strings.Builder
	for _, line := range strings.Split(data, "\n") {
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			continue
		}
		cur.WriteString(line)
		if s := cur.String(); strings.TrimSpace(s) != "" {
			recs = append(recs, splitFields(s))
		}
		cur.Reset()
	}
	return recs
}

// splitFields splits at ':' outside braces and brackets.
func splitFields(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case ':':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
