package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites a piece in place, keeping its alignment. b bounds
// the time of its regexes and how much it may grow the text (see
// budget.go): at most growthLimit(b.grownFrom) bytes after any stage.
// Normalizers that may exceed that in one step (Replace, Prepend) check
// before they build the text; the others grow it by a bounded factor,
// and a Sequence checks after each of its stages.
type normalizer interface {
	normalize(n *nstr, b *budget) error
}

func buildNormalizer(o jobj) (normalizer, error) {
	t, err := o.typ()
	if err != nil {
		return nil, err
	}
	switch t {
	case "Sequence":
		subs, err := o.objList("normalizers")
		if err != nil {
			return nil, err
		}
		var seq seqNormalizer
		for _, sub := range subs {
			x, err := buildNormalizer(sub)
			if err != nil {
				return nil, err
			}
			seq.stages = append(seq.stages, x)
			seq.names = append(seq.names, sub.name())
		}
		return seq, nil
	case "NFC":
		return unicodeNorm{norm.NFC}, nil
	case "NFD":
		return unicodeNorm{norm.NFD}, nil
	case "NFKC":
		return unicodeNorm{norm.NFKC}, nil
	case "NFKD":
		return unicodeNorm{norm.NFKD}, nil
	case "Lowercase":
		return lowercase{}, nil
	case "StripAccents":
		return stripAccents{}, nil
	case "Strip":
		l, err := o.boolean("strip_left", true)
		if err != nil {
			return nil, err
		}
		r, err := o.boolean("strip_right", true)
		if err != nil {
			return nil, err
		}
		return stripNorm{left: l, right: r}, nil
	case "Prepend":
		p, err := o.str("prepend", "")
		if err != nil {
			return nil, err
		}
		return prependNorm{p, o.name()}, nil
	case "Replace":
		m, err := buildMatcher(o, "pattern")
		if err != nil {
			return nil, err
		}
		c, err := o.str("content", "")
		if err != nil {
			return nil, err
		}
		return replaceNorm{m, c, o.name()}, nil
	case "BertNormalizer":
		var b bertNorm
		if b.clean, err = o.boolean("clean_text", true); err != nil {
			return nil, err
		}
		if b.chinese, err = o.boolean("handle_chinese_chars", true); err != nil {
			return nil, err
		}
		if b.lower, err = o.boolean("lowercase", true); err != nil {
			return nil, err
		}
		// strip_accents null means "same as lowercase" in tokenizers.
		if b.accents, err = o.boolean("strip_accents", b.lower); err != nil {
			return nil, err
		}
		return b, nil
	case "":
		return nil, fmt.Errorf("%s: missing \"type\"", o.path)
	default:
		return nil, o.unsupported("normalizer type " + t)
	}
}

type seqNormalizer struct {
	stages []normalizer
	names  []string // of the stages, for errors
}

func (s seqNormalizer) normalize(n *nstr, b *budget) error {
	for i, x := range s.stages {
		if err := x.normalize(n, b); err != nil {
			return err
		}
		if err := b.checkGrowth(s.names[i], len(n.s)); err != nil {
			return err
		}
	}
	return nil
}

// unicodeNorm applies a Unicode normalization form segment by segment (a
// segment starts at a starter), so composed output aligns to the characters
// it came from.
type unicodeNorm struct{ f norm.Form }

func (u unicodeNorm) normalize(n *nstr, _ *budget) error {
	if u.f.IsNormalString(n.s) {
		return nil
	}
	b := newBuilder(len(n.s) + 8)
	for i := 0; i < len(n.s); {
		j := i + u.f.NextBoundaryInString(n.s[i:], true)
		if j <= i {
			j = len(n.s)
		}
		seg := n.s[i:j]
		out := u.f.String(seg)
		if out == seg {
			b.keep(n, i, j)
		} else {
			b.add(out, n.origRange(i, j))
		}
		i = j
	}
	b.done(n)
	return nil
}

type lowercase struct{}

func (lowercase) normalize(n *nstr, _ *budget) error {
	n.mapRunes(func(r rune) string { return strings.ToLower(string(r)) })
	return nil
}

type stripAccents struct{}

func (stripAccents) normalize(n *nstr, _ *budget) error {
	n.mapRunes(func(r rune) string {
		if unicode.Is(unicode.Mn, r) {
			return ""
		}
		return string(r)
	})
	return nil
}

type stripNorm struct{ left, right bool }

func (s stripNorm) normalize(n *nstr, _ *budget) error {
	i, j := 0, len(n.s)
	if s.left {
		for i < j {
			r, size := utf8.DecodeRuneInString(n.s[i:])
			if !unicode.IsSpace(r) {
				break
			}
			i += size
		}
	}
	if s.right {
		for j > i {
			r, size := utf8.DecodeLastRuneInString(n.s[i:j])
			if !unicode.IsSpace(r) {
				break
			}
			j -= size
		}
	}
	*n = n.sub(i, j)
	return nil
}

type prependNorm struct {
	s    string
	name string // for errors
}

func (p prependNorm) normalize(n *nstr, b *budget) error {
	if n.s == "" {
		return nil
	}
	if err := b.checkGrowth(p.name, len(n.s)+len(p.s)); err != nil {
		return err
	}
	n.prepend(p.s)
	return nil
}

type replaceNorm struct {
	m       matcher
	content string
	name    string // for errors
}

func (r replaceNorm) normalize(n *nstr, b *budget) error {
	ms, err := r.m.find(n.s, b)
	if err != nil {
		return err
	}
	if err := b.checkGrowth(r.name, replacedLen(len(n.s), ms, len(r.content), growthLimit(b.grownFrom))); err != nil {
		return err
	}
	n.replaceAll(ms, r.content)
	return nil
}

// replacedLen is the length of a text of n bytes once each range of ms is
// replaced by content bytes, or a number over limit when that is over limit.
func replacedLen(n int, ms [][2]int, content, limit int) int {
	for _, m := range ms {
		if n += content - (m[1] - m[0]); n > limit {
			return n
		}
	}
	return n
}

// bertNorm is BERT's normalizer: control characters removed, whitespace
// made a space, CJK ideographs padded with spaces, optional lowercasing and
// accent removal.
type bertNorm struct{ clean, chinese, lower, accents bool }

func (b bertNorm) normalize(n *nstr, _ *budget) error {
	if b.clean {
		n.mapRunes(func(r rune) string {
			switch {
			case r == 0 || r == 0xfffd || (isControl(r)):
				return ""
			case unicode.IsSpace(r):
				return " "
			}
			return string(r)
		})
	}
	if b.chinese {
		n.mapRunes(func(r rune) string {
			if isCJK(r) {
				return " " + string(r) + " "
			}
			return string(r)
		})
	}
	if b.accents {
		_ = unicodeNorm{norm.NFD}.normalize(n, nil)
		_ = stripAccents{}.normalize(n, nil)
	}
	if b.lower {
		_ = lowercase{}.normalize(n, nil)
	}
	return nil
}

func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}
