package safetensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// maxNesting bounds how deep arrays and objects may nest in a header. A
// valid one nests three deep (the header, a tensor, its shape); anything
// deeper is refused anyway, and the bound keeps the recursion of skipValue
// short whatever the file holds.
const maxNesting = 64

// scanner reads the JSON of a safetensors header in place, without
// building a tree: the header is one flat object, so parseHeader walks it
// key by key and decodes only what it keeps (names, dtypes, shapes,
// offsets, metadata strings). Decoding each entry with encoding/json (a
// Decoder's tokens, then a map of raw messages, then each field) cost
// about 9 µs, 46 allocations and 3.7 kB per tensor; this costs two
// allocations. The grammar is RFC 8259's (FuzzScannerMatchesEncodingJSON
// compares it with json.Valid); strings with escapes are decoded by
// encoding/json so that their meaning is exactly its.
type scanner struct {
	b []byte
	i int
}

// syntaxError is a JSON syntax error at a byte offset of the header.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at header byte %d", e.msg, e.off) }

func (s *scanner) fail(format string, args ...any) error {
	return &syntaxError{fmt.Sprintf(format, args...), s.i}
}

// unexpected reports the character at s.i (or the end of the input) where
// want was expected.
func (s *scanner) unexpected(want string) error {
	if s.i >= len(s.b) {
		return s.fail("unexpected end of JSON input, want %s", want)
	}
	r, _ := utf8.DecodeRune(s.b[s.i:])
	return s.fail("invalid character %q, want %s", r, want)
}

// peek skips white space and returns the next byte, 0 at the end.
func (s *scanner) peek() byte {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// expect consumes the byte c after white space.
func (s *scanner) expect(c byte, want string) error {
	if s.peek() != c {
		return s.unexpected(want)
	}
	s.i++
	return nil
}

// stringSpan consumes a string, returning it with its quotes and whether
// it holds escapes (without any, the bytes between the quotes are its
// value: the whole header has been checked to be UTF-8).
func (s *scanner) stringSpan() (quoted []byte, escaped bool, err error) {
	if s.peek() != '"' {
		return nil, false, s.unexpected("a string")
	}
	start := s.i
	for i := start + 1; i < len(s.b); {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return s.b[start:s.i], escaped, nil
		case c == '\\':
			escaped = true
			if i+1 == len(s.b) {
				break
			}
			switch s.b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
				if i+6 <= len(s.b) && isHex(s.b[i+2]) && isHex(s.b[i+3]) && isHex(s.b[i+4]) && isHex(s.b[i+5]) {
					i += 6
					continue
				}
			}
			s.i = i
			return nil, false, s.fail("invalid escape in a string")
		case c < 0x20:
			s.i = i
			return nil, false, s.fail("control character %#02x in a string", c)
		default:
			i++
			continue
		}
		break
	}
	s.i = len(s.b)
	return nil, false, s.fail("unexpected end of JSON input in a string")
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// unquote returns the value of a string from stringSpan.
func unquote(quoted []byte, escaped bool) string {
	if !escaped {
		return string(quoted[1 : len(quoted)-1])
	}
	var v string
	json.Unmarshal(quoted, &v) // stringSpan has checked the syntax
	return v
}

// str consumes a string and returns its value.
func (s *scanner) str() (string, error) {
	q, esc, err := s.stringSpan()
	if err != nil {
		return "", err
	}
	return unquote(q, esc), nil
}

// number consumes a number; isInt says it has neither fraction nor
// exponent.
func (s *scanner) number() (span []byte, isInt bool, err error) {
	s.peek()
	start, i, b := s.i, s.i, s.b
	digits := func() bool {
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		s.i = i
		return nil, false, s.unexpected("a digit")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			s.i = i
			return nil, false, s.unexpected("a digit after the decimal point")
		}
		isInt = false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			s.i = i
			return nil, false, s.unexpected("a digit in the exponent")
		}
		isInt = false
	}
	s.i = i
	return b[start:i], isInt, nil
}

// skipValue consumes one value of any kind and returns its text; depth is
// how many arrays and objects enclose it.
func (s *scanner) skipValue(depth int) ([]byte, error) {
	c := s.peek()
	start := s.i
	var err error
	switch {
	case c == '{' || c == '[':
		if depth >= maxNesting {
			return nil, s.fail("arrays and objects nested deeper than %d", maxNesting)
		}
		err = s.container(c, depth)
	case c == '"':
		_, _, err = s.stringSpan()
	case c == '-' || '0' <= c && c <= '9':
		_, _, err = s.number()
	case c == 't':
		err = s.literal("true")
	case c == 'f':
		err = s.literal("false")
	case c == 'n':
		err = s.literal("null")
	default:
		err = s.unexpected("a value")
	}
	if err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return s.fail("invalid literal, want %s", word)
	}
	s.i += len(word)
	return nil
}

// container consumes an object (open '{') or an array ('[') whose
// elements are skipped.
func (s *scanner) container(open byte, depth int) error {
	if open == '{' {
		return s.object(func([]byte, bool) error {
			_, err := s.skipValue(depth + 1)
			return err
		})
	}
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if _, err := s.skipValue(depth + 1); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.unexpected("',' or ']'")
		}
	}
}

// object consumes an object, calling value with each key (as stringSpan
// returns it) when s.i is at the key's value, which value must consume.
func (s *scanner) object(value func(quoted []byte, escaped bool) error) error {
	if err := s.expect('{', "'{'"); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		q, esc, err := s.stringSpan()
		if err != nil {
			return err
		}
		if err := s.expect(':', "':'"); err != nil {
			return err
		}
		if err := value(q, esc); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.unexpected("',' or '}'")
		}
	}
}
