package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// qwenSplit is Qwen2/Qwen3's Split pattern: cl100k's with single digits.
const qwenSplit = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// fastScanner returns a hand-written scanner equivalent to one of the
// well-known pre-tokenizer patterns (GPT-2's, cl100k/Llama-3's, Qwen's,
// o200k/Phi-4's), or nil. regexp2 is a backtracking engine working on
// runes and runs at about 2 MB/s on these patterns; the scanners decide
// each alternative from one or two characters of look-ahead (o200k's
// from a run of letters). TestScannersMatchRegexp2 and
// FuzzScanners check them against regexp2, which stays the reference.
func fastScanner(src string) func(s string, out [][2]int) [][2]int {
	switch src {
	case gpt2Split:
		return scanGPT2
	case cl100kSplit:
		return func(s string, out [][2]int) [][2]int { return scanCL100K(s, out, 3) }
	case qwenSplit:
		return func(s string, out [][2]int) [][2]int { return scanCL100K(s, out, 1) }
	case o200kSplit:
		return scanO200K
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

// whitespacePiece handles `\s*[\r\n]+|\s+(?!\S)|\s+` at a whitespace
// character s[i], where the cl100k and o200k patterns end.
func whitespacePiece(s string, i int) int {
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
		return lastNL // \s*[\r\n]+ backtracks to the last newline of the run
	}
	return whitespaceTail(s, i)
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
		default:
			end = whitespacePiece(s, i)
		}
		if end == i {
			end = i + size0
		}
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

// Classes of a character for o200k's pattern. Its two letter classes
// overlap: U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and W = [\p{Ll}\p{Lm}\p{Lo}\p{M}]
// share Lm, Lo and the marks, which are not \p{L}: a mark is also in the
// optional leading [^\r\n\p{L}\p{N}] (P) and in [^\s\p{L}\p{N}] (O).
type o200kClass uint8

const (
	oUpper   o200kClass = 1 << iota // U
	oLower                          // W
	oLetter                         // \p{L}
	oNumber                         // \p{N}
	oSpace                          // \s: unicode.IsSpace, as regexp2 has it
	oNewline                        // \r or \n (also oSpace)
)

// o200kClassOf gives r's classes by the unicode tables regexp2's \p{..}
// uses (unicode.Categories).
func o200kClassOf(r rune) o200kClass {
	switch {
	case r == '\r' || r == '\n':
		return oSpace | oNewline
	case unicode.IsLower(r): // Ll
		return oLetter | oLower
	case unicode.IsUpper(r) || unicode.IsTitle(r): // Lu, Lt
		return oLetter | oUpper
	case unicode.IsLetter(r): // Lm, Lo
		return oLetter | oUpper | oLower
	case unicode.Is(unicode.M, r):
		return oUpper | oLower
	case unicode.IsNumber(r):
		return oNumber
	case unicode.IsSpace(r):
		return oSpace
	}
	return 0
}

var asciiO200K [128]o200kClass

func init() {
	for c := range 128 {
		asciiO200K[c] = o200kClassOf(rune(c))
	}
}

// o200kAt returns the classes of the character at s[i] and its size; size
// 0 past the end. Invalid UTF-8 (which Encode rejects first) reads as
// U+FFFD, a symbol, one byte at a time.
func o200kAt(s string, i int) (o200kClass, int) {
	if i >= len(s) {
		return 0, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return asciiO200K[c], 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	return o200kClassOf(r), size
}

// o200kRun advances from i over characters in any of the classes keep.
func o200kRun(s string, i int, keep o200kClass) int {
	for {
		c, size := o200kAt(s, i)
		if size == 0 || c&keep == 0 {
			return i
		}
		i += size
	}
}

// o200kOther advances from i over characters of O, [^\s\p{L}\p{N}].
func o200kOther(s string, i int) int {
	for {
		c, size := o200kAt(s, i)
		if size == 0 || c&(oSpace|oLetter|oNumber) != 0 {
			return i
		}
		i += size
	}
}

// o200kSymbols matches `O+[\r\n/]*` at i, where s[i] is in O.
func o200kSymbols(s string, i int) int {
	i = o200kOther(s, i)
	for i < len(s) && (s[i] == '\r' || s[i] == '\n' || s[i] == '/') {
		i++
	}
	return i
}

// o200kLowerWord matches `U*W+C?` at j (C the contractions), or returns
// -1. U* takes the whole U run and gives characters back until W+ can
// start: at the character after the run if it is in W (then Ll, and W+
// runs on), else at the run's last character in W (the characters after
// it in the run are Lu or Lt, so W+ takes that one alone).
func o200kLowerWord(s string, j int) int {
	end := -1
	for k := j; ; {
		c, size := o200kAt(s, k)
		if size == 0 || c&oUpper == 0 {
			if size > 0 && c&oLower != 0 {
				end = o200kRun(s, k, oLower)
			}
			break
		}
		if k += size; c&oLower != 0 {
			end = k
		}
	}
	if end < 0 {
		return -1
	}
	return end + contraction(s, end, true)
}

// o200kUpperWord matches `U+W*C?` at j, or returns -1.
func o200kUpperWord(s string, j int) int {
	k := o200kRun(s, j, oUpper)
	if k == j {
		return -1
	}
	k = o200kRun(s, k, oLower)
	return k + contraction(s, k, true)
}

// scanO200K implements o200k's pattern (o200kSplit): at each position the
// first alternative that matches, each with regexp2's backtracking order,
//
//	P?U*W+C? | P?U+W*C? | \p{N}{1,3} | ' '?O+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//
// with P = [^\r\n\p{L}\p{N}] (taken first, then given back), U, W and O as
// for o200kClass. Unlike the other scanners it may read past the piece
// it returns (U* reads the whole U run; see prefix.go).
func scanO200K(s string, out [][2]int) [][2]int {
	if out == nil {
		out = make([][2]int, 0, len(s)/4+1)
	}
	for i := 0; i < len(s); {
		c0, size0 := o200kAt(s, i)
		end := -1
		switch {
		case c0&oLetter != 0: // not P: a word without one
			if end = o200kLowerWord(s, i); end < 0 {
				end = o200kUpperWord(s, i) // c0 is in U if not in W
			}
		case c0&(oNewline|oNumber) == 0: // P, then a word; or not
			end = o200kLowerWord(s, i+size0)
			if end < 0 && c0&oLower != 0 {
				end = o200kLowerWord(s, i) // a mark: without P, W+ takes it
			}
			if end < 0 {
				end = o200kUpperWord(s, i+size0) // without P, U+ fails: c0 is not in U
			}
		}
		if end < 0 {
			c1, size1 := o200kAt(s, i+size0)
			switch {
			case c0&oNumber != 0:
				end = i
				for n := 0; n < 3; n++ {
					c, size := o200kAt(s, end)
					if size == 0 || c&oNumber == 0 {
						break
					}
					end += size
				}
			case c0&(oSpace|oLetter|oNumber) == 0:
				end = o200kSymbols(s, i)
			case s[i] == ' ' && size1 > 0 && c1&(oSpace|oLetter|oNumber) == 0:
				end = o200kSymbols(s, i+1)
			default:
				end = whitespacePiece(s, i)
			}
		}
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}
