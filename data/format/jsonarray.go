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

// jsonSource streams the records of a JSON document with json.Decoder
// tokens, one at a time: the objects of a top-level array; those of the
// one list of records a top-level object holds under a key
// ({"data": [...]}, the datasets-server API's {"rows": [{"row": {...}}]};
// jsonobject.go); or a top-level object that is one record itself.
type jsonSource struct {
	name    string
	rc      io.ReadCloser
	tr      *posTracker
	dec     *json.Decoder
	started bool
	ended   bool
	// elemBefore is the stream offset before the element being decoded.
	elemBefore int64
	// mapping is the Options' (ShapeAuto where the shape is detected):
	// whether a list's first object is a record is told by it.
	mapping Mapping
	// A top-level object's list of records: found (wrapped), under key;
	// rows when its elements are datasets-server rows; pending, its first
	// element, read to tell it is a record.
	wrapped bool
	key     string
	rows    bool
	pending json.RawMessage
	// others are the object's members not read, for the note (the first
	// maxOthers), and their count.
	others  []string
	nOthers int
	// lim is the record limit rc reads through (nil: none).
	lim *recordLimit
	// walked counts the tokens of the top-level object's members read
	// past (skipMember).
	walked int
}

func newJSONSource(rc io.ReadCloser, name string, mapping Mapping, lim *recordLimit) *jsonSource {
	tr := &posTracker{r: skipBOM(rc), line: 1}
	dec := json.NewDecoder(tr)
	dec.UseNumber()
	return &jsonSource{name: name, rc: rc, tr: tr, dec: dec, mapping: mapping, lim: lim}
}

func (s *jsonSource) close() error { return s.rc.Close() }

func (s *jsonSource) errAt(off int64, msg string, sentinel error) *PosError {
	line, col := s.tr.pos(off)
	return &PosError{File: s.name, Line: line, Column: col, Msg: msg, Err: sentinel}
}

// syntaxErr positions a decoder error. The decoder is unusable after a
// syntax error, so every such error is fatal.
func (s *jsonSource) syntaxErr(err error) (Record, error, bool) {
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
func (s *jsonSource) elementStart(before int64) int64 {
	start := before
	if k := before - s.tr.winStart; k >= 0 && k <= int64(len(s.tr.win)) {
		rest := s.tr.win[k:]
		start += int64(len(rest) - len(bytes.TrimLeft(rest, ", \t\r\n")))
	}
	return start
}

func (s *jsonSource) next() (Record, error, bool) {
	if s.ended {
		return Record{}, io.EOF, true
	}
	if !s.started {
		s.started = true
		before := s.dec.InputOffset()
		tok, err := s.dec.Token()
		if err == io.EOF {
			s.ended = true
			return Record{}, io.EOF, true
		}
		if err != nil {
			return s.syntaxErr(err)
		}
		switch tok {
		case json.Delim('['):
		case json.Delim('{'):
			if rec, err, fatal, whole := s.openObject(s.dec.InputOffset() - 1); whole {
				return rec, err, fatal
			}
		default:
			return Record{}, s.errAt(s.elementStart(before), fmt.Sprintf("expected a JSON array '[' of objects at the top level (or an object holding one, or one record), found %v", tokenName(tok)), ErrMalformed), true
		}
	}
	if s.pending != nil {
		raw := s.pending
		s.pending = nil
		return s.element(raw)
	}
	if !s.dec.More() {
		tok, err := s.dec.Token() // the closing ']'
		if err != nil {
			return s.syntaxErr(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != ']' {
			return Record{}, s.errAt(s.dec.InputOffset()-1, "expected ']' closing the JSON array", ErrMalformed), true
		}
		if s.wrapped {
			return s.closeObject()
		}
		if err := s.atEOF("the JSON array", false); err != nil {
			return Record{}, err, true
		}
		s.ended = true
		return Record{}, io.EOF, true
	}
	s.elemBefore = s.dec.InputOffset()
	var raw json.RawMessage
	if err := s.dec.Decode(&raw); err != nil {
		return s.syntaxErr(err)
	}
	return s.element(raw)
}

// element is the record of the array element raw, just decoded.
func (s *jsonSource) element(raw json.RawMessage) (Record, error, bool) {
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
	rec := Record{Fields: fields, Line: line, Column: col, raw: raw}
	if s.rows {
		return s.row(rec)
	}
	return rec, nil, false
}

// atEOF checks that the document ends after its value (what), reading
// the next token. Where more follows on a later line, the file may be
// JSON Lines (hint: the value was an object).
func (s *jsonSource) atEOF(what string, hint bool) error {
	end := s.dec.InputOffset()
	if _, err := s.dec.Token(); err == io.EOF {
		return nil
	}
	start := s.elementStart(end)
	msg := "expected end of file after " + what
	if line, _ := s.tr.pos(start); hint && line > s.line(end) {
		msg += ", found more on a later line: one JSON object per line is JSON Lines, which data.format jsonl reads (a .json file is told to be JSON Lines from its first line when that is a whole object, within 8 MiB)"
	}
	return s.errAt(start, msg, ErrMalformed)
}

// line is the line of stream offset off.
func (s *jsonSource) line(off int64) int {
	l, _ := s.tr.pos(off)
	return l
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
	case string:
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%v", tok)
}
