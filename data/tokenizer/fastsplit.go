package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// qwenSplit is Qwen2/Qwen3's Split pattern: cl100k's with single digits.
const qwenSplit = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// fastScanner returns a hand-written scanner equivalent to one of the
// well-known pre-tokenizer patterns (GPT-2's, cl100k/Llama-3's, Qwen's), or
// nil. regexp2 is a backtracking engine working on runes and runs at about
// 2 MB/s on these patterns; the scanners decide each alternative from one
// or two characters of look-ahead. TestScannersMatchRegexp2 and
// FuzzScanners check them against regexp2, which stays the reference.
func fastScanner(src string) func(s string, out [][2]int) [][2]int {
	switch src {
	case gpt2Split:
		return scanGPT2
	case cl100kSplit:
		return func(s string, out [][2]int) [][2]int { return scanCL100K(s, out, 3) }
	case qwenSplit:
		return func(s string, out [][2]int) [][2]int { return scanCL100K(s, out, 1) }
	}
	return nil
}

// Character classes of the patterns: \p{L}, \p{N}, \r or \n, other \s, and
// everything else ([^\s\p{L}\p{N}]).
type charClass uint8

const (
	clLetter charClass = iota
	clNumber
	clNewline
	clSpace
	clOther
)

var asciiClass [128]charClass

func init() {
	for c := range 128 {
		r := rune(c)
		switch {
		case r == '\r' || r == '\n':
			asciiClass[c] = clNewline
		case unicode.IsLetter(r):
			asciiClass[c] = clLetter
		case unicode.IsNumber(r):
			asciiClass[c] = clNumber
		case unicode.IsSpace(r):
			asciiClass[c] = clSpace
		default:
			asciiClass[c] = clOther
		}
	}
}

// classAt returns the class of the character at s[i] and its size; i past
// the end gives (clOther, 0) with ok false.
func classAt(s string, i int) (charClass, int, bool) {
	if i >= len(s) {
		return clOther, 0, false
	}
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1, true
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	switch {
	case unicode.IsLetter(r):
		return clLetter, size, true
	case unicode.IsNumber(r):
		return clNumber, size, true
	case unicode.IsSpace(r):
		return clSpace, size, true
	}
	return clOther, size, true
}

func isWS(c charClass) bool { return c == clSpace || c == clNewline }

// run advances from i over characters whose class satisfies keep, at most
// limit characters (limit < 0: no limit).
func run(s string, i int, keep func(charClass) bool, limit int) int {
	for n := 0; limit < 0 || n < limit; n++ {
		c, size, ok := classAt(s, i)
		if !ok || !keep(c) {
			break
		}
		i += size
	}
	return i
}

func isLetter(c charClass) bool  { return c == clLetter }
func isNumber(c charClass) bool  { return c == clNumber }
func isOther(c charClass) bool   { return c == clOther }
func isNewline(c charClass) bool { return c == clNewline }

// contraction returns the length of 's 't 're 've 'm 'll 'd at s[i:] (0 if
// none); fold makes it case-insensitive (ASCII, as regexp2 folds these).
func contraction(s string, i int, fold bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	lower := func(b byte) byte {
		if fold && b >= 'A' && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return 3
		}
	}
	return 0
}

// whitespaceTail handles the trailing alternatives shared by all patterns,
// `\s+(?!\S)|\s+`: a whitespace run followed by a non-space gives its last
// character to the next piece (so " word" keeps its space), unless the run
// is a single character.
func whitespaceTail(s string, i int) int {
	end := run(s, i, isWS, -1)
	if end == len(s) {
		return end
	}
	_, lastSize := utf8.DecodeLastRuneInString(s[i:end])
	if end-lastSize > i {
		return end - lastSize
	}
	return end
}

// scanGPT2 implements `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
func scanGPT2(s string, out [][2]int) [][2]int {
	if out == nil {
		out = make([][2]int, 0, len(s)/4+1)
	}
	for i := 0; i < len(s); {
		end := i
		if n := contraction(s, i, false); n > 0 {
			end = i + n
		} else {
			c0, size0, _ := classAt(s, i)
			j := i
			c := c0
			if s[i] == ' ' {
				if c1, _, ok := classAt(s, i+1); ok && c1 != clSpace && c1 != clNewline {
					j, c = i+1, c1
				}
			}
			switch c {
			case clLetter:
				end = run(s, j, isLetter, -1)
			case clNumber:
				end = run(s, j, isNumber, -1)
			case clOther:
				end = run(s, j, isOther, -1)
			default:
				end = whitespaceTail(s, i)
			}
			if end == i {
				end = i + size0
			}
		}
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

// scanCL100K implements cl100k_base's (and Llama-3's, Qwen's with
// maxDigits 1) pattern:
// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
func scanCL100K(s string, out [][2]int, maxDigits int) [][2]int {
	if out == nil {
		out = make([][2]int, 0, len(s)/4+1)
	}
	for i := 0; i < len(s); {
		end := i
		c0, size0, _ := classAt(s, i)
		c1, _, ok1 := classAt(s, i+size0)
		switch n := contraction(s, i, true); {
		case n > 0:
			end = i + n
		case c0 == clLetter:
			end = run(s, i, isLetter, -1)
		case c0 != clNumber && c0 != clNewline && ok1 && c1 == clLetter:
			// One leading non-letter, non-digit (a space, a quote, a bracket).
			end = run(s, i+size0, isLetter, -1)
		case c0 == clNumber:
			end = run(s, i, isNumber, maxDigits)
		case c0 == clOther:
			end = run(s, run(s, i, isOther, -1), isNewline, -1)
		case s[i] == ' ' && ok1 && c1 == clOther:
			end = run(s, run(s, i+1, isOther, -1), isNewline, -1)
		default: // whitespace
			wsEnd := run(s, i, isWS, -1)
			lastNL := -1
			for k := i; k < wsEnd; {
				c, size, _ := classAt(s, k)
				if c == clNewline {
					lastNL = k + size
				}
				k += size
			}
			if lastNL > 0 {
				end = lastNL // \s*[\r\n]+ backtracks to the last newline of the run
			} else {
				end = whitespaceTail(s, i)
			}
		}
		if end == i {
			end = i + size0
		}
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}
