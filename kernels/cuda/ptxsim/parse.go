package ptxsim

import (
	"fmt"
	"strconv"
	"strings"
)

// stmt is one PTX statement: the tokens up to its ';' (without it), a label
// ("name", ":"), or a lone "{" or "}". line is the 1-based source line of
// its first token.
type stmt struct {
	line int
	toks []string
}

// tokenize splits PTX source into statements. Comments are dropped; strings
// (.pragma "nounroll") are kept as one token with their quotes.
func tokenize(src string) ([]stmt, error) {
	var out []stmt
	var cur []string
	curLine := 0
	line := 1
	flush := func() {
		if len(cur) > 0 {
			out = append(out, stmt{line: curLine, toks: cur})
			cur = nil
		}
	}
	add := func(tok string) {
		if len(cur) == 0 {
			curLine = line
		}
		cur = append(cur, tok)
	}
	isWord := func(c byte) bool {
		return c == '_' || c == '.' || c == '%' || c == '$' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += end + 4
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			add(src[i : j+1])
			i = j + 1
		case c == ';':
			flush()
			i++
		case c == '{' || c == '}':
			// A brace opens or closes a scope unless it is inside an
			// operand list (a vector {%f1,%f2} or an initializer).
			if len(cur) > 0 && c == '{' && isHeader(cur) {
				flush()
			}
			if len(cur) == 0 {
				out = append(out, stmt{line: line, toks: []string{string(c)}})
			} else {
				add(string(c))
			}
			i++
		case c == ':' && len(cur) == 1:
			// label
			cur = append(cur, ":")
			flush()
			i++
		case isWord(c):
			j := i
			for j < len(src) && (isWord(src[j]) || src[j] == ':' && j+2 < len(src) && src[j+1] == ':' && isWord(src[j+2])) {
				if src[j] == ':' {
					j++ // "::" inside a qualifier: .shared::cta, .L2::128B
				}
				j++
			}
			w := src[i:j]
			if len(cur) == 0 && (w == ".version" || w == ".target" || w == ".address_size") {
				// These directives end at the end of the line, without ';'.
				k := j
				for k < len(src) && src[k] != '\n' {
					k++
				}
				out = append(out, stmt{line: line, toks: append([]string{w}, strings.Fields(src[j:k])...)})
				i = k
				continue
			}
			add(w)
			i = j
		case strings.IndexByte(",[]()+-|!@=<>:", c) >= 0:
			add(string(c))
			i++
		default:
			return nil, fmt.Errorf("line %d: unexpected character %q", line, c)
		}
	}
	flush()
	return out, nil
}

// isHeader reports whether toks are a function header (.entry or .func
// with its parameter lists and performance directives), whose '{' opens
// the body rather than an operand list.
func isHeader(toks []string) bool {
	hdr := false
	for _, t := range toks {
		switch t {
		case ".entry", ".func":
			hdr = true
		case "=":
			return false
		}
	}
	return hdr
}

// parseInt reads a PTX integer literal: decimal, 0x hex, 0 octal, with an
// optional U suffix.
func parseInt(s string) (int64, bool) {
	s = strings.TrimSuffix(s, "U")
	if s == "" || !(s[0] >= '0' && s[0] <= '9') {
		return 0, false
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		u, err := strconv.ParseUint(s[2:], 16, 64)
		return int64(u), err == nil
	}
	u, err := strconv.ParseUint(s, 0, 64)
	return int64(u), err == nil
}

// parseFloatBits reads 0fXXXXXXXX (f32 bits) or 0dXXXXXXXXXXXXXXXX (f64
// bits); size is 4 or 8.
func parseFloatBits(s string) (bits uint64, size int, ok bool) {
	if len(s) == 10 && (s[:2] == "0f" || s[:2] == "0F") {
		u, err := strconv.ParseUint(s[2:], 16, 32)
		return u, 4, err == nil
	}
	if len(s) == 18 && (s[:2] == "0d" || s[:2] == "0D") {
		u, err := strconv.ParseUint(s[2:], 16, 64)
		return u, 8, err == nil
	}
	return 0, 0, false
}

// splitOperands splits the operand tokens of an instruction at top-level
// commas (not inside [] {} ()).
func splitOperands(toks []string) [][]string {
	var out [][]string
	depth := 0
	start := 0
	for i, t := range toks {
		switch t {
		case "[", "{", "(":
			depth++
		case "]", "}", ")":
			depth--
		case ",":
			if depth == 0 {
				out = append(out, toks[start:i])
				start = i + 1
			}
		}
	}
	if start < len(toks) {
		out = append(out, toks[start:])
	}
	return out
}
