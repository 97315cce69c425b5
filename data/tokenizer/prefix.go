package tokenizer

import (
	"unicode/utf8"
)

// Encoding a prefix of a text.
//
// Callers that keep only the first n tokens of a text (data/prep truncating
// a record to max_length) need not encode the whole text: a record may be
// 64 MiB, and its encoding costs about 100 bytes and a microsecond per
// byte. EncodePrefix encodes a prefix of the text cut where the tokenizer
// cannot merge across, growing the prefix geometrically until it yields
// more than n tokens; when no such cut exists (or the tokenizer is of a
// kind the argument below does not cover) it encodes the whole text. Its
// tokens are always exactly the first tokens of Encode's.
//
// The cut. The text is cut at byte c where text[c-1] is an ASCII letter and
// text[c] is a space ("word| word"). Encoding text[:c] gives exactly the
// tokens of Encode(text) that lie before c, stage by stage:
//
//   - Added tokens (matched in the raw text): find scans left to right, and
//     at a position i < c its choice reads text[i:] only as far as the
//     patterns that occur there, plus the whitespace after a match (rstrip)
//     and the character after it (single_word). cutAt refuses a cut where
//     a pattern occurrence starts before c and ends at or after c; every
//     other occurrence starting before c ends before c, and the character
//     after it is inside the prefix, so the matches starting before c are
//     the same. An rstrip run from a match before c stops at the letter at
//     c-1; an lstrip run of a match at or after c cannot pass that letter,
//     so it starts at or after c. Segments before the last are thus the
//     same, and the last one is cut at c.
//   - Normalizers (canCutNorm): NFC/NFD/NFKC/NFKD, Lowercase, StripAccents,
//     Strip, Prepend and a Replace of one character that is not an ASCII
//     letter. A space and U+2581 are starters that compose with nothing and
//     decompose to themselves, so a normalization boundary lies before the
//     cut; the case and accent maps work character by character and keep
//     an ASCII letter an ASCII letter; Strip and Prepend touch the ends of
//     a segment only (and the prefix ends with a letter, which right-strip
//     keeps); a one-character Replace cannot match across the cut. So the
//     normalized prefix is the normalized text's prefix up to the image of
//     the cut, where a letter is followed by " " or "▁" (a Replace of " ").
//     Tokens added with normalized: true are matched after normalizing;
//     tokenizers with them are not cut (no family has them).
//   - Pre-tokenizers (canCutPre): each one either splits at the cut (S), or
//     is local (L): the pieces of the prefix are those of the text
//     intersected with [0, c). The known scanners (GPT-2's, cl100k's,
//     Llama-3's, Qwen's pattern, fastsplit.go) are S: the piece holding the
//     letter at c-1 is a letter run (or a contraction) and ends at the
//     first non-letter, the space at c, whether or not text follows it; a
//     scanner decides each piece from its characters and the one after
//     it, and every piece before that one ends before c-1, so the prefix's
//     pieces are the same. o200k's pattern (o200kSplit, Phi-4's; its
//     classes U, W, P, O as in scanO200K) is S too, though a search may
//     read past the piece it finds, to the end of a run of U. The ASCII
//     letter at c-1 is Lu or Ll: it is in U or W, and in no other class
//     of the pattern (P, \p{N}, O, \s, [\r\n/]) but as a letter of a
//     contraction. So the piece holding c-1 is a word, P?U*W+C? or
//     P?U+W*C?, whose U run, W run or contraction C holds c-1: a run
//     ends at the space at c, a contraction cannot go on into it, and C,
//     which starts with an apostrophe, cannot start at it; the piece ends
//     at c. A search from a start before c reads c only as the character
//     after a U or W run through c-1 (is it in U, in W, an apostrophe?)
//     or after a contraction's first characters (is it the next letter?),
//     and a space answers no to each as the end of the text does: runs of
//     the other classes stop at the letter at c-1, and \s+(?!\S) reads
//     one past a whitespace run, which ends at or before c-1. So every
//     match starting before c is the same in the prefix. Every character
//     starts a match of the scanners' patterns, so their matches tile the
//     text and a Split with behavior Removed and invert (Phi-4's) keeps
//     them as pieces, as Isolated does. Metaspace with split is S (a piece
//     starts at every ▁); splits on single characters (Digits, Punctuation,
//     WhitespaceSplit, a one-character Split pattern, any behavior) and
//     ByteLevel without its regex are L. A Sequence of L and S stages is L,
//     and S if one stage is. Other regexes (regexp2 patterns with
//     look-around) are not cut.
//   - The model runs on each piece alone. When no stage splits at the cut,
//     the piece that crosses it must be one the model splits there itself:
//     the cut's image is a letter followed by "▁", and no token holds an
//     ASCII letter followed by "▁" (canCutMeta; no ignore_merges, which
//     looks words up whole), so no merge crosses the cut and the tokens
//     before it are those of the part before it alone.
//   - The post-processor: ByteLevel's offset trimming works token by token;
//     a TemplateProcessing with one $A puts its leading specials first and
//     its trailing ones after the sequence, which are left off a prefix.
//
// So every token of the prefix's encoding is a token of the whole one; the
// prefix is grown until it has more than n tokens or no cut is left.

// canCut reports whether t may encode prefixes cut before a space that
// follows an ASCII letter (see above).
func (t *Tokenizer) canCut() bool {
	if t.normAdded != nil || t.model == nil {
		return false
	}
	right := " " // what the cut's space has become
	if t.norm != nil {
		var ok bool
		if right, ok = canCutNorm(t.norm, right); !ok {
			return false
		}
	}
	split, right, ok := canCutPre(t.pre, right)
	if !ok {
		return false
	}
	if !split && !(t.model.cutMeta && right == metaspace) {
		return false
	}
	return true
}

// canCutNorm follows the cut's space through a normalizer: ok is false for
// a normalizer that may change the text across the cut.
func canCutNorm(n normalizer, right string) (string, bool) {
	switch n := n.(type) {
	case seqNormalizer:
		for _, x := range n.stages {
			var ok bool
			if right, ok = canCutNorm(x, right); !ok {
				return "", false
			}
		}
		return right, true
	case unicodeNorm, lowercase, stripAccents, stripNorm, prependNorm:
		return right, true
	case replaceNorm:
		lit, ok := n.m.(literal)
		if !ok || utf8.RuneCountInString(string(lit)) != 1 || isASCIILetter(lit[0]) {
			return "", false
		}
		if string(lit) == right {
			if n.content != " " && n.content != metaspace {
				return "", false
			}
			right = n.content
		}
		return right, true
	}
	return "", false
}

// canCutPre follows the cut through a pre-tokenizer: split says it puts a
// piece boundary at the cut, ok that it is at least local there.
func canCutPre(p preTokenizer, right string) (split bool, _ string, ok bool) {
	switch p := p.(type) {
	case nil:
		return false, right, true
	case seqPre:
		for _, x := range p {
			s, r, ok := canCutPre(x, right)
			if !ok {
				return false, "", false
			}
			split, right = split || s, r
		}
		return split, right, true
	case splitPre:
		switch m := p.m.(type) {
		case *regex:
			// Both keep the matches as pieces (see above).
			keeps := p.behavior == isolated && !p.invert || p.behavior == removed && p.invert
			return m.fast != nil && keeps, right, m.fast != nil
		case literal:
			return false, right, utf8.RuneCountInString(string(m)) == 1
		case charMatcher:
			return false, right, true
		}
		return false, "", false
	case byteLevelPre:
		if p.re == nil {
			return false, right, true
		}
		return p.re.fast != nil, right, p.re.fast != nil
	case metaspacePre:
		if right == " " {
			right = p.repl
		}
		return p.splitOn && right == p.repl, right, true
	}
	return false, "", false
}

// canCutPost reports whether the post-processor's output for a prefix is a
// prefix of its output for the whole text, once trailing specials are left
// off (see trimTrailingSpecials).
func canCutPost(p postProcessor) bool {
	switch p := p.(type) {
	case nil, trimOffsets:
		return true
	case seqPost:
		for _, x := range p {
			if !canCutPost(x) {
				return false
			}
		}
		return true
	case *templatePost:
		seqs := 0
		for _, it := range p.single {
			if it.special == nil {
				seqs++
			}
		}
		return seqs == 1
	}
	return false
}

func isASCIILetter(b byte) bool { return b|0x20 >= 'a' && b|0x20 <= 'z' }

// maxCutTries bounds the cuts refused for an added token across them, so
// that a text made of such tokens costs a bounded search before falling
// back to the whole text.
const maxCutTries = 1 << 10

// nextCut returns the first cut at or after from (see above), or -1.
func (t *Tokenizer) nextCut(text string, from int, tries *int) int {
	for c := max(from, 1); c < len(text); c++ {
		if text[c] != ' ' || !isASCIILetter(text[c-1]) {
			continue
		}
		if !t.rawAdded.reaches(text, c) {
			return c
		}
		if *tries++; *tries >= maxCutTries {
			return -1
		}
	}
	return -1
}

// encodePrefixBytes is encodeBytes keeping at least the first n+1 tokens
// when there are more than n; end is the length of the prefix of text that
// was encoded.
func (t *Tokenizer) encodePrefixBytes(text string, addSpecial bool, n int) (enc Encoding, end int, err error) {
	if err := checkUTF8(text); err != nil {
		return Encoding{}, 0, err
	}
	if n >= 0 && t.cuts && (!addSpecial || canCutPost(t.post)) {
		// Four bytes a token is English with byte-level BPE; denser text
		// doubles the prefix a few times.
		from, tries := 4*n+64, 0
		for from < len(text) {
			c := t.nextCut(text, from, &tries)
			if c < 0 {
				break
			}
			raw, err := t.encodeRaw(text[:c], n+1)
			if err != nil {
				return Encoding{}, 0, err
			}
			if k := len(raw.ids); k > n {
				if t.post != nil {
					raw = t.post.process(raw, addSpecial)
					trimTrailingSpecials(raw, k)
				}
				return raw.encoding(), c, nil
			}
			from = 2 * c
		}
	}
	raw, err := t.encodeRaw(text, 0)
	if err != nil {
		return Encoding{}, 0, err
	}
	if t.post != nil {
		raw = t.post.process(raw, addSpecial)
	}
	return raw.encoding(), len(text), nil
}

// trimTrailingSpecials leaves off what follows the k-th token that is not
// a post-processor special: the specials a template puts after $A, which
// come after the whole text's tokens, not the prefix's.
func trimTrailingSpecials(e *rawEncoding, k int) {
	for i, sp := range e.special {
		if !sp {
			if k--; k == 0 {
				e.ids, e.tokens, e.offsets, e.special = e.ids[:i+1], e.tokens[:i+1], e.offsets[:i+1], e.special[:i+1]
				return
			}
		}
	}
}

// EncodePrefix is Encode for a caller that keeps at most n tokens: it
// returns the first tokens of Encode(text, addSpecialTokens), all of them
// when there are at most n and more than n otherwise, encoding only as
// much of the text as that takes where the tokenizer allows (see the
// comment at the top of prefix.go). Invalid UTF-8 anywhere in text is an
// error, as for Encode.
func (t *Tokenizer) EncodePrefix(text string, addSpecialTokens bool, n int) (Encoding, error) {
	enc, end, err := t.encodePrefixBytes(text, addSpecialTokens, n)
	if err != nil {
		return Encoding{}, err
	}
	// Offsets end at or before end, which is a character boundary: the
	// prefix converts them as the whole text would.
	if text := text[:end]; !isASCII(text) {
		conv := newCharOffsets(text)
		for i, o := range enc.Offsets {
			enc.Offsets[i] = conv.convert(o)
		}
	}
	return enc, nil
}

// EncodeOffsetsPrefix is EncodeOffsets as EncodePrefix is Encode: byte
// offsets, the first tokens of the whole text's encoding, more than n of
// them when it has more than n.
func (t *Tokenizer) EncodeOffsetsPrefix(text string, addSpecialTokens bool, n int) (ids []int, offsets [][2]int, err error) {
	enc, _, err := t.encodePrefixBytes(text, addSpecialTokens, n)
	if err != nil {
		return nil, nil, err
	}
	return enc.IDs, enc.Offsets, nil
}
