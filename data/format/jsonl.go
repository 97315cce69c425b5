package format

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/ftune/ftune/internal/jsonsize"
)

// jsonlSource reads one JSON object per line. Memory is bounded by the
// longest line, not by the file.
type jsonlSource struct {
	name string
	rc   io.ReadCloser
	br   *bufio.Reader
	line int
}

func newJSONLSource(rc io.ReadCloser, name string) *jsonlSource {
	return &jsonlSource{name: name, rc: rc, br: bufio.NewReaderSize(rc, 64<<10)}
}

func (s *jsonlSource) close() error { return s.rc.Close() }

func (s *jsonlSource) next() (Record, error, bool) {
	for {
		raw, err := s.br.ReadBytes('\n')
		if len(raw) == 0 && err != nil {
			if err == io.EOF {
				return Record{}, io.EOF, true
			}
			return Record{}, &PosError{File: s.name, Line: s.line + 1, Msg: err.Error()}, true
		}
		s.line++
		if err != nil && err != io.EOF {
			return Record{}, &PosError{File: s.name, Line: s.line, Msg: err.Error()}, true
		}
		if s.line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // UTF-8 BOM
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		fields, col, msg, sentinel := decodeObject(raw)
		if sentinel != nil {
			return Record{}, &PosError{File: s.name, Line: s.line, Column: col, Msg: msg, Err: sentinel}, false
		}
		return Record{Fields: fields, Line: s.line, Column: col, raw: raw}, nil, false
	}
}

// decodeObject decodes raw as exactly one JSON object. On failure it gives
// the 1-based byte column, what was expected, and the sentinel; on success
// the column of the object's first byte.
func decodeObject(raw []byte) (map[string]any, int, string, error) {
	if !utf8.Valid(raw) {
		return nil, firstInvalidUTF8(raw) + 1, "text must be UTF-8", ErrInvalidUTF8
	}
	start := len(raw) - len(bytes.TrimLeft(raw, " \t\r\n"))
	if raw[start] != '{' {
		return nil, start + 1, fmt.Sprintf("expected a JSON object starting with '{', found %q", firstRune(raw[start:])), ErrMalformed
	}
	// Counted before decoding: a record of millions of small values
	// within the byte bound would take gigabytes decoded.
	if off, over := jsonsize.CountValues(raw, maxRecordValues); over {
		return nil, off + 1, tooManyValues(), ErrRecordTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		col, msg := jsonErrorPos(err, len(raw))
		return nil, col, msg, ErrMalformed
	}
	end := int(dec.InputOffset())
	if k, off, dup := duplicateKey(raw[:end]); dup {
		return nil, int(off) + 1, fmt.Sprintf("key %q appears twice in one object (JSON readers keep only the last value)", k), ErrMalformed
	}
	if off, bad := loneSurrogate(raw[:end]); bad {
		return nil, off + 1, "a \\u escape of a lone UTF-16 surrogate (JSON readers would write U+FFFD for it); text must be UTF-8", ErrInvalidUTF8
	}
	if rest := bytes.TrimSpace(raw[end:]); len(rest) > 0 {
		off := end + bytes.Index(raw[end:], rest[:1])
		return nil, off + 1, fmt.Sprintf("expected end of line after the JSON object, found %q", firstRune(rest)), ErrMalformed
	}
	return fields, start + 1, "", nil
}

// jsonErrorPos turns encoding/json errors into a column and a message
// saying what was expected.
func jsonErrorPos(err error, n int) (int, string) {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset counts the bytes read before the error: the bad byte is
		// the Offset-th, which is its 1-based column.
		col := int(se.Offset)
		if col < 1 {
			col = 1
		}
		return col, "invalid JSON: " + se.Error()
	case errors.As(err, &te):
		return int(te.Offset), fmt.Sprintf("expected %v, found a JSON %s", te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return n + 1, "invalid JSON: unexpected end of line (unclosed object or string?)"
	}
	return 0, "invalid JSON: " + err.Error()
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

func firstRune(b []byte) string {
	r, _ := utf8.DecodeRune(b)
	return string(r)
}
