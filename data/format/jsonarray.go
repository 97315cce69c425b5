package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// posTracker sits between the file and json.Decoder and keeps the bytes
// the decoder has read but not yet consumed, so that a stream offset can be
// turned into line:column without keeping the whole file. The window is
// trimmed after every element, so memory follows the decoder's buffer.
type posTracker struct {
	r        io.Reader
	win      []byte
	winStart int64 // stream offset of win[0]
	line     int   // 1-based line at winStart
	col      int   // 0-based byte column at winStart
}

func (t *posTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.win = append(t.win, p[:n]...)
	return n, err
}

// pos returns the 1-based line and column of stream offset off.
func (t *posTracker) pos(off int64) (int, int) {
	line, col := t.line, t.col
	end := off - t.winStart
	if end > int64(len(t.win)) {
		end = int64(len(t.win))
	}
	for _, c := range t.win[:max(end, 0)] {
		if c == '\n' {
			line, col = line+1, 0
		} else {
			col++
		}
	}
	return line, col + 1
}

// trim forgets the bytes before stream offset off.
func (t *posTracker) trim(off int64) {
	k := off - t.winStart
	if k <= 0 {
		return
	}
	if k > int64(len(t.win)) {
		k = int64(len(t.win))
	}
	t.line, t.col = t.pos(off)
	t.col-- // pos is 1-based
	t.win = append(t.win[:0], t.win[k:]...)
	t.winStart += k
}

// jsonArraySource streams the objects of a top-level JSON array with
// json.Decoder tokens, one element at a time.
type jsonArraySource struct {
	name    string
	rc      io.ReadCloser
	tr      *posTracker
	dec     *json.Decoder
	started bool
	ended   bool
	// elemBefore is the stream offset before the element being decoded.
	elemBefore int64
}

func newJSONArraySource(rc io.ReadCloser, name string) *jsonArraySource {
	tr := &posTracker{r: rc, line: 1}
	dec := json.NewDecoder(tr)
	dec.UseNumber()
	return &jsonArraySource{name: name, rc: rc, tr: tr, dec: dec}
}

func (s *jsonArraySource) close() error { return s.rc.Close() }

func (s *jsonArraySource) errAt(off int64, msg string, sentinel error) *PosError {
	line, col := s.tr.pos(off)
	return &PosError{File: s.name, Line: line, Column: col, Msg: msg, Err: sentinel}
}

// syntaxErr positions a decoder error. The decoder is unusable after a
// syntax error, so every such error is fatal.
func (s *jsonArraySource) syntaxErr(err error) (Record, error, bool) {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return Record{}, s.errAt(s.tr.winStart+int64(len(s.tr.win)), "unexpected end of file: expected ']' closing the JSON array", ErrMalformed), true
	}
	off := s.dec.InputOffset()
	if _, ok := err.(*json.SyntaxError); ok {
		// The decoder's offsets are not reliably stream-relative after
		// earlier Decode calls; re-scan the failing element, which is still
		// in the window, to find the exact byte.
		start := s.elementStart(s.elemBefore)
		var v any
		if k := start - s.tr.winStart; k >= 0 && k <= int64(len(s.tr.win)) {
			if e2, ok := json.Unmarshal(s.tr.win[k:], &v).(*json.SyntaxError); ok {
				off = start + e2.Offset - 1
			}
		}
	}
	return Record{}, s.errAt(off, "invalid JSON: "+err.Error(), ErrMalformed), true
}

// elementStart skips the separator and blanks after stream offset before.
func (s *jsonArraySource) elementStart(before int64) int64 {
	start := before
	if k := before - s.tr.winStart; k >= 0 && k <= int64(len(s.tr.win)) {
		rest := s.tr.win[k:]
		start += int64(len(rest) - len(bytes.TrimLeft(rest, ", \t\r\n")))
	}
	return start
}

func (s *jsonArraySource) next() (Record, error, bool) {
	if s.ended {
		return Record{}, io.EOF, true
	}
	if !s.started {
		s.started = true
		tok, err := s.dec.Token()
		if err == io.EOF {
			s.ended = true
			return Record{}, io.EOF, true
		}
		if err != nil {
			return s.syntaxErr(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return Record{}, s.errAt(s.dec.InputOffset()-1, fmt.Sprintf("expected a JSON array '[' of objects at the top level, found %v (one object per line is JSONL: name the file .jsonl)", tokenName(tok)), ErrMalformed), true
		}
	}
	if !s.dec.More() {
		tok, err := s.dec.Token() // the closing ']'
		if err != nil {
			return s.syntaxErr(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != ']' {
			return Record{}, s.errAt(s.dec.InputOffset()-1, "expected ']' closing the JSON array", ErrMalformed), true
		}
		if _, err := s.dec.Token(); err != io.EOF {
			return Record{}, s.errAt(s.dec.InputOffset(), "expected end of file after the JSON array", ErrMalformed), true
		}
		s.ended = true
		return Record{}, io.EOF, true
	}
	s.elemBefore = s.dec.InputOffset()
	var raw json.RawMessage
	if err := s.dec.Decode(&raw); err != nil {
		return s.syntaxErr(err)
	}
	start := s.elementStart(s.elemBefore)
	line, col := s.tr.pos(start)
	defer s.tr.trim(s.dec.InputOffset())
	fields, c, msg, sentinel := decodeObject(raw)
	if sentinel != nil {
		// decodeObject counts columns within the element; they are exact
		// when the element sits on one line, which is the common layout.
		if bytes.IndexByte(raw, '\n') < 0 {
			col += c - 1
		}
		if sentinel == ErrMalformed && len(raw) > 0 && raw[0] != '{' {
			msg = fmt.Sprintf("expected a JSON object as array element, found %s", tokenName(raw))
		}
		return Record{}, &PosError{File: s.name, Line: line, Column: col, Msg: msg, Err: sentinel}, false
	}
	return Record{Fields: fields, Line: line, Column: col, raw: raw}, nil, false
}

func tokenName(tok any) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("'%v'", v)
	case json.RawMessage:
		if len(v) > 20 {
			v = v[:20]
		}
		return fmt.Sprintf("%q", string(v))
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}
