package tokenizer

import "unicode/utf8"

// byteChars is GPT-2's bytes_to_unicode table: each byte as a printable
// character, so byte-level vocabularies can be stored as text. Printable
// Latin-1 bytes stand for themselves; the rest are shifted to U+0100 and up
// in byte order (space becomes 'Ġ', newline 'Ċ').
var byteChars [256]string

// charBytes is the inverse of byteChars.
var charBytes = map[rune]byte{}

func init() {
	n := 0
	for b := range 256 {
		keep := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		r := rune(b)
		if !keep {
			r = rune(256 + n)
			n++
		}
		byteChars[b] = string(r)
		charBytes[r] = byte(b)
	}
}

// unByteLevel turns a byte-level token back into its bytes. A token holding
// a character outside the table (an added token such as "<|im_start|>" is
// fine, "é" written literally is not) is kept as its UTF-8, as tokenizers'
// ByteLevel decoder does.
func unByteLevel(tok string, out []byte) []byte {
	start := len(out)
	for _, r := range tok {
		b, ok := charBytes[r]
		if !ok {
			return append(out[:start], tok...)
		}
		out = append(out, b)
	}
	return out
}

// lossyUTF8 converts bytes to a valid string, replacing each maximal invalid
// subpart with U+FFFD, as Rust's String::from_utf8_lossy does (Go's
// strings.ToValidUTF8 would merge adjacent bad sequences into one).
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			out = append(out, b[i:i+size]...)
			i += size
			continue
		}
		out = append(out, "\uFFFD"...)
		i += invalidPrefix(b[i:])
	}
	return string(out)
}

// invalidPrefix returns the length of the maximal subpart of an ill-formed
// sequence at the start of b (at least 1): the longest prefix that could
// begin a valid UTF-8 character.
func invalidPrefix(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k > 0 {
			lo, hi = 0x80, 0xBF
		}
		if x < lo || x > hi {
			break
		}
		n++
	}
	return n
}
