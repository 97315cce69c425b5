package format

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// csvSource reads CSV or TSV with a header row naming the columns.
type csvSource struct {
	name   string
	rc     io.ReadCloser
	cr     *csv.Reader
	header []string
	// nextLine is the line after the last record read (its last field's
	// line, which is where a quoted multi-line field starts): where a read
	// error happened, as far as the reader lets us know (csv.Reader gives
	// no position with the errors of the reader under it).
	nextLine int
}

func newCSVSource(rc io.ReadCloser, name string, comma rune) (*csvSource, error) {
	cr := csv.NewReader(rc)
	cr.Comma = comma
	cr.ReuseRecord = true
	// TSV files rarely quote, and a stray '"' in a value would otherwise be
	// a syntax error.
	cr.LazyQuotes = comma == '\t'
	s := &csvSource{name: name, rc: rc, cr: cr, nextLine: 1}
	head, err := cr.Read()
	if err == io.EOF {
		return s, nil // empty file: Next reports an empty dataset
	}
	if err != nil {
		return nil, s.posErr(err)
	}
	seen := map[string]bool{}
	for i, h := range head {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		h = strings.TrimSpace(h)
		if !utf8.ValidString(h) {
			return nil, &PosError{File: name, Line: 1, Msg: fmt.Sprintf("header column %d", i+1), Err: ErrInvalidUTF8}
		}
		if h == "" || seen[h] {
			return nil, &PosError{File: name, Line: 1, Msg: fmt.Sprintf("header column %d: expected a unique non-empty column name, found %q", i+1, h), Err: ErrMalformed}
		}
		seen[h] = true
		s.header = append(s.header, h)
	}
	cr.FieldsPerRecord = len(s.header)
	s.nextLine = s.lineAfter(len(head))
	return s, nil
}

// lineAfter is the line after the record of n fields just read.
func (s *csvSource) lineAfter(n int) int {
	line, _ := s.cr.FieldPos(n - 1)
	return line + 1
}

func (s *csvSource) close() error { return s.rc.Close() }

func (s *csvSource) posErr(err error) *PosError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			msg = fmt.Sprintf("expected %d fields as in the header", len(s.header))
		}
		if errors.Is(pe.Err, csv.ErrQuote) && pe.StartLine > 0 && pe.StartLine != pe.Line {
			// An unclosed quote swallows the rest of the file: the reader
			// notices at its end, but the fault is where the field opened.
			return &PosError{File: s.name, Line: pe.StartLine, Msg: fmt.Sprintf(
				"a quoted field in the record starting on this line is never closed (the reader went on to line %d); a '\"' inside a quoted field must be doubled", pe.Line), Err: ErrMalformed}
		}
		return &PosError{File: s.name, Line: pe.Line, Column: pe.Column, Msg: msg, Err: ErrMalformed}
	}
	return &PosError{File: s.name, Line: s.nextLine, Msg: err.Error()}
}

func (s *csvSource) next() (Record, error, bool) {
	if s.header == nil {
		return Record{}, io.EOF, true
	}
	rec, err := s.cr.Read()
	if err == io.EOF {
		return Record{}, io.EOF, true
	}
	if err != nil {
		var pe *csv.ParseError
		// csv.Reader resumes at the next record after a parse error.
		return Record{}, s.posErr(err), !errors.As(err, &pe)
	}
	line, _ := s.cr.FieldPos(0)
	s.nextLine = s.lineAfter(len(rec))
	fields := make(map[string]any, len(rec))
	for i, v := range rec {
		if !utf8.ValidString(v) {
			l, c := s.cr.FieldPos(i)
			return Record{}, &PosError{File: s.name, Line: l, Column: c + firstInvalidUTF8([]byte(v)),
				Msg: fmt.Sprintf("column %q", s.header[i]), Err: ErrInvalidUTF8}, false
		}
		fields[s.header[i]] = v
	}
	return Record{Fields: fields, Line: line, Column: 1}, nil, false
}

// textSource cuts plain text into completion records {"text": ...}.
type textSource struct {
	name string
	rc   io.ReadCloser
	br   *bufio.Reader
	mode TextMode
	line int
	eof  bool
}

func newTextSource(rc io.ReadCloser, name string, mode TextMode) *textSource {
	return &textSource{name: name, rc: rc, br: bufio.NewReaderSize(rc, 64<<10), mode: mode}
}

func (s *textSource) close() error { return s.rc.Close() }

func (s *textSource) readLine() ([]byte, error) {
	if s.eof {
		return nil, io.EOF
	}
	b, err := s.br.ReadBytes('\n')
	if err == io.EOF {
		s.eof = true
		if len(b) == 0 {
			return nil, io.EOF
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	s.line++
	if s.line == 1 {
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	}
	// A file written on Windows ends its lines with CRLF: read as LF, as
	// Python's text mode (Hugging Face's text loader) reads them, so that
	// a paragraph or document does not teach the model a '\r' before
	// each newline. Only the pair is translated (Python also reads a lone
	// CR as a line end): a CR before other bytes is kept as text, since
	// files with CR-only line ends (classic Mac OS) are gone and a CR
	// inside a line is a terminal's redraw, not a line; one at the end of
	// a file without a final LF is trimmed with the record's end (next).
	if n := len(b); n >= 2 && b[n-2] == '\r' && b[n-1] == '\n' {
		b = append(b[:n-2], '\n')
	}
	return b, nil
}

func (s *textSource) next() (Record, error, bool) {
	var buf []byte
	start := 0
	for {
		b, err := s.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			// The failed read is of the next line, or of the paragraph
			// that began before it.
			line := s.line + 1
			if start > 0 {
				line = start
			}
			return Record{}, &PosError{File: s.name, Line: line, Msg: err.Error()}, true
		}
		if !utf8.Valid(b) {
			bad := &PosError{File: s.name, Line: s.line, Column: firstInvalidUTF8(b) + 1, Msg: "text must be UTF-8", Err: ErrInvalidUTF8}
			if s.mode != TextLines {
				// The line is part of a paragraph or document, which is
				// the bad record, skipped whole under Options.Skip:
				// otherwise its lines before this one would be lost and
				// the rest read on as an example of its own, a document
				// cut in two.
				if err := s.skipUnit(); err != nil {
					return Record{}, &PosError{File: s.name, Line: s.line + 1, Msg: err.Error()}, true
				}
			}
			return Record{}, bad, false
		}
		blank := len(bytes.TrimSpace(b)) == 0
		switch s.mode {
		case TextLines:
			if blank {
				continue
			}
			return textRecord(bytes.TrimRight(b, "\r\n"), s.line), nil, false
		case TextParagraphs:
			if blank {
				if start > 0 {
					return textRecord(bytes.TrimRight(buf, "\r\n"), start), nil, false
				}
				continue
			}
		}
		if start == 0 {
			start = s.line
		}
		buf = append(buf, b...)
	}
	if start > 0 && len(bytes.TrimSpace(buf)) > 0 {
		return textRecord(bytes.TrimRight(buf, "\r\n"), start), nil, false
	}
	return Record{}, io.EOF, true
}

// skipUnit reads on to the end of the paragraph or document being read
// (a blank line, or the file's end), keeping none of it.
func (s *textSource) skipUnit() error {
	for {
		b, err := s.readLine()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if s.mode == TextParagraphs && len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
	}
}

func textRecord(b []byte, line int) Record {
	return Record{Fields: map[string]any{"text": string(b)}, Line: line, Column: 1}
}
