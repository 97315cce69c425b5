package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// span is a half-open byte range [start, end) in the original text.
type span struct{ start, end int }

// nstr is a piece of (possibly normalized) text that remembers where each of
// its bytes came from in the original text, like tokenizers' NormalizedString.
// orig[i] is the original range of s[i]; a nil orig means the piece is an
// untouched slice of the original starting at base (the common case, kept
// cheap because most tokenizers never change the text before the model).
type nstr struct {
	s    string
	orig []span
	base int
}

func identity(s string, base int) nstr { return nstr{s: s, base: base} }

// at returns the original range of byte i of n.s.
func (n *nstr) at(i int) span {
	if n.orig == nil {
		return span{n.base + i, n.base + i + 1}
	}
	return n.orig[i]
}

// origRange maps bytes [i, j) of n.s to an original range. Empty ranges map
// to an empty range at the original position of byte i (or the end).
func (n *nstr) origRange(i, j int) span {
	if i >= j {
		switch {
		case i < len(n.s):
			p := n.at(i).start
			return span{p, p}
		case len(n.s) > 0:
			p := n.at(len(n.s) - 1).end
			return span{p, p}
		default:
			return span{n.base, n.base}
		}
	}
	return span{n.at(i).start, n.at(j - 1).end}
}

// charRange widens [i, j) to whole UTF-8 characters of n.s before mapping it:
// tokenizers aligns every byte a character produces to the whole character,
// so a byte-level token holding part of an emoji reports the emoji's range.
func (n *nstr) charRange(i, j int) span {
	for i > 0 && i < len(n.s) && !utf8.RuneStart(n.s[i]) {
		i--
	}
	for j < len(n.s) && !utf8.RuneStart(n.s[j]) {
		j++
	}
	return n.origRange(i, j)
}

func (n *nstr) sub(i, j int) nstr {
	if n.orig == nil {
		return nstr{s: n.s[i:j], base: n.base + i}
	}
	return nstr{s: n.s[i:j], orig: n.orig[i:j], base: n.base}
}

// builder assembles a transformed nstr chunk by chunk.
type builder struct {
	sb   strings.Builder
	orig []span
}

// newBuilder sizes a builder for about n output bytes (growing the span
// table byte by byte was a third of the encode time of SentencePiece-style
// tokenizers, whose normalizers rewrite every piece).
func newBuilder(n int) *builder {
	b := &builder{orig: make([]span, 0, n)}
	b.sb.Grow(n)
	return b
}

// add appends s, every byte of which comes from the original range r.
func (b *builder) add(s string, r span) {
	b.sb.WriteString(s)
	for range len(s) {
		b.orig = append(b.orig, r)
	}
}

// keep appends bytes [i, j) of n unchanged.
func (b *builder) keep(n *nstr, i, j int) {
	b.sb.WriteString(n.s[i:j])
	if n.orig != nil {
		b.orig = append(b.orig, n.orig[i:j]...)
		return
	}
	for k := i; k < j; k++ {
		b.orig = append(b.orig, span{n.base + k, n.base + k + 1})
	}
}

func (b *builder) done(n *nstr) {
	n.s = b.sb.String()
	n.orig = b.orig
}

// mapRunes rewrites n rune by rune; f returns the replacement of r. Bytes of
// a replacement align to the original range of the rune they replace.
func (n *nstr) mapRunes(f func(r rune) string) {
	changed := false
	for _, r := range n.s {
		if f(r) != string(r) {
			changed = true
			break
		}
	}
	if !changed {
		return
	}
	b := newBuilder(len(n.s) + 8)
	for i, r := range n.s {
		size := utf8.RuneLen(r)
		if r == utf8.RuneError {
			_, size = utf8.DecodeRuneInString(n.s[i:])
		}
		b.add(f(r), n.origRange(i, i+size))
	}
	b.done(n)
}

// prepend puts s in front of n, aligned to n's first character (as
// tokenizers' NormalizedString::prepend does). n must not be empty.
func (n *nstr) prepend(s string) {
	_, size := utf8.DecodeRuneInString(n.s)
	r := n.origRange(0, size)
	b := newBuilder(len(s) + len(n.s))
	b.add(s, r)
	b.keep(n, 0, len(n.s))
	b.done(n)
}

// replaceAll replaces each [start, end) range in ms (sorted, disjoint) of n by
// content; the content aligns to the whole range it replaces.
func (n *nstr) replaceAll(ms [][2]int, content string) {
	if len(ms) == 0 {
		return
	}
	b := newBuilder(len(n.s) + len(ms)*len(content))
	prev := 0
	for _, m := range ms {
		b.keep(n, prev, m[0])
		b.add(content, n.origRange(m[0], m[1]))
		prev = m[1]
	}
	b.keep(n, prev, len(n.s))
	b.done(n)
}

// charOffsets converts byte offsets into text to character (code point)
// offsets the way tokenizers' Python binding does (BytesToCharOffsetConverter).
type charOffsets struct {
	text  string
	chars []int32 // chars[b] is the index of the character holding byte b
}

func newCharOffsets(text string) *charOffsets {
	c := &charOffsets{text: text, chars: make([]int32, len(text))}
	ci := int32(0)
	for i := range text {
		_, size := utf8.DecodeRuneInString(text[i:])
		for k := i; k < i+size && k < len(text); k++ {
			c.chars[k] = ci
		}
		ci++
	}
	return c
}

func (c *charOffsets) convert(o [2]int) [2]int {
	if o[0] < 0 || o[0] >= len(c.chars) {
		return [2]int{0, 0}
	}
	start := int(c.chars[o[0]])
	if o[1] < len(c.chars) {
		return [2]int{start, int(c.chars[o[1]])}
	}
	end := start
	if o[1]-1 >= 0 && o[1]-1 < len(c.chars) {
		end = int(c.chars[o[1]-1])
	}
	return [2]int{start, end + 1}
}
