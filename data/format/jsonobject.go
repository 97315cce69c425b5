package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ftune/ftune/internal/jsonsize"
)

// A JSON file whose top level is an object holds its records in one of
// two ways. Wrapped: one member is the list of records, the others
// describe it ({"version": "1.0", "data": [...]}, SQuAD-style; {"train":
// [...]}; the datasets-server API's {"features": [...], "rows":
// [{"row_idx", "row": {...}, "truncated_cells"}], "num_rows_total"}). Or
// the object is one record ({"messages": [...]}), as the same line of a
// JSONL file is. The members are walked with the decoder's tokens: the
// first list whose first element is a record (Detect finds its shape, or
// it has a column of the Options' mapping) and whose key is not a field
// records have (messages, tools, ...) is the records, streamed element by
// element as an array's, each with its own line. Without one, the object
// is the record, read whole from the position tracker's window (never
// trimmed before the first record; bounded by Options.MaxRecordBytes).
// A second list of records after the first (a split per key) is refused:
// which to train on, and what the others are for, is the user's to say.

// maxOthers bounds the members named in the note.
const maxOthers = 8

// recordFields are fields of a record, never a wrapper's key: a list of
// objects under one is a record's messages, tools or history.
var recordFields = append(slices.Clone(layoutFields), "system", "tools", "functions", "history")

// openObject reads the members of the top-level object that starts at
// stream offset start, up to its list of records (then s.wrapped, its
// first element pending, and whole false). Without one, the object is
// returned as one record, or refused (whole true).
func (s *jsonSource) openObject(start int64) (rec Record, err error, fatal, whole bool) {
	s.walked = 0
	record := false // a member is a record's field: the object is a record
	for s.dec.More() {
		key, err := s.memberKey()
		if err != nil {
			return Record{}, err, true, true
		}
		record = record || s.recordField(key)
		list, first, rows, err := s.member(key, !record)
		if err != nil {
			return Record{}, err, true, true
		}
		if list {
			s.wrapped, s.key, s.rows, s.pending = true, key, rows, first
			return Record{}, nil, false, false
		}
	}
	if _, err := s.dec.Token(); err != nil { // the closing '}'
		return Record{}, s.tokenErr(err), true, true
	}
	end := s.dec.InputOffset()
	if err := s.atEOF("the JSON object", true); err != nil {
		return Record{}, err, true, true
	}
	s.ended = true
	raw := s.tr.win[start-s.tr.winStart : end-s.tr.winStart]
	line, col := s.tr.pos(start)
	fields, c, msg, sentinel := decodeObject(raw)
	if sentinel != nil {
		line, col = s.tr.pos(start + int64(c) - 1)
		return Record{}, &PosError{File: s.name, Line: line, Column: col, Msg: msg, Err: sentinel}, true, true
	}
	if n, ok := columns(fields); ok {
		return Record{}, &PosError{File: s.name, Line: line, Column: col, Err: ErrUnsupported,
			Msg: fmt.Sprintf("the object's fields %s are lists of %d values each, a dataset's columns (as datasets' Dataset.to_dict or pandas' to_json(orient=\"list\") write them): ftune reads records, an object each; write them with Dataset.to_json (JSON Lines) or as a list of objects", quoteList(sortedKeys(fields)), n)}, true, true
	}
	return Record{Fields: fields, Line: line, Column: col, raw: raw}, nil, false, true
}

// closeObject reads the members after the list of records, to the
// object's end: they are noted, and another list of records is refused.
func (s *jsonSource) closeObject() (Record, error, bool) {
	s.walked = 0
	for s.dec.More() {
		at := s.elementStart(s.dec.InputOffset())
		key, err := s.memberKey()
		if err != nil {
			return Record{}, err, true
		}
		list, _, _, err := s.member(key, !s.recordField(key))
		if err != nil {
			return Record{}, err, true
		}
		if list {
			return Record{}, s.splits(at, key), true
		}
	}
	if _, err := s.dec.Token(); err != nil { // the closing '}'
		return Record{}, s.tokenErr(err), true
	}
	if err := s.atEOF("the JSON object", false); err != nil {
		return Record{}, err, true
	}
	s.ended = true
	return Record{}, io.EOF, true
}

// splits is the error of an object holding lists of records under s.key
// and key (at at) and perhaps more: a dataset's splits, which one file
// cannot hold. The rest of the object is read for the keys of the others,
// each list read past, not held, as far as the record limit allows.
func (s *jsonSource) splits(at int64, key string) error {
	keys := []string{s.key, key}
	more := ""
	err := s.skip()
	for err == nil && s.dec.More() {
		if key, err = s.memberKey(); err != nil {
			break
		}
		var list bool
		if list, _, _, err = s.member(key, !s.recordField(key)); list {
			keys = append(keys, key)
			err = s.skip()
		}
	}
	if err != nil {
		more = " (and perhaps more after them)"
		if s.lim != nil {
			// The limit stopped the look for more keys, not a record.
			s.lim.tripped = false
		}
	}
	return s.errAt(at, fmt.Sprintf("the object holds lists of records under %s%s, as a dataset's splits: a file is read as one list of records. Write each split to its own file named after it (train.jsonl, validation.jsonl, test.jsonl) in one folder and give the folder as data (its splits are read as such), or give the one to train on", quoteList(keys), more), ErrUnsupported)
}

// memberKey reads an object member's key.
func (s *jsonSource) memberKey() (string, error) {
	tok, err := s.dec.Token()
	if err != nil {
		return "", s.tokenErr(err)
	}
	key, ok := tok.(string)
	if !ok { // the decoder refuses a key that is not a string first
		return "", s.errAt(s.dec.InputOffset(), "expected an object member's key", ErrMalformed)
	}
	return key, nil
}

// member reads the value of the member key: a list whose first element is
// a record (with records set) is a list of records, returned with that
// element and whether it is a datasets-server row; any other value is
// read past, and its key noted.
func (s *jsonSource) member(key string, records bool) (list bool, first json.RawMessage, rows bool, err error) {
	if !records {
		// Read past whole, as text: walked token by token, a list of
		// millions of values would allocate each.
		before := s.dec.InputOffset()
		var v json.RawMessage
		if err := s.dec.Decode(&v); err != nil {
			return false, nil, false, s.valueErr(before, err)
		}
		if s.nOthers++; len(s.others) < maxOthers {
			s.others = append(s.others, key)
		}
		return false, nil, false, nil
	}
	tok, err := s.dec.Token()
	if err != nil {
		return false, nil, false, s.tokenErr(err)
	}
	if d, ok := tok.(json.Delim); ok && d == '[' && records && s.dec.More() {
		s.elemBefore = s.dec.InputOffset()
		if err := s.dec.Decode(&first); err != nil {
			_, err, _ = s.syntaxErr(err)
			return false, nil, false, err
		}
		if rows, ok := s.recordElement(key, first); ok {
			return true, first, rows, nil
		}
		err = s.skipMember()
	} else if ok && (d == '[' || d == '{') {
		err = s.skipMember()
	}
	if err != nil {
		return false, nil, false, s.tokenErr(err)
	}
	if s.nOthers++; len(s.others) < maxOthers {
		s.others = append(s.others, key)
	}
	return false, nil, false, nil
}

// recordElement says whether raw, the first element of the list under
// key, is a record: an object whose shape Detect finds, or that has a
// column of the mapping set, as is the "row" of a datasets-server row
// ({"row_idx", "row"} under "rows", then rows true).
func (s *jsonSource) recordElement(key string, raw json.RawMessage) (rows, ok bool) {
	// An element past the bound on values is not decoded to be looked at:
	// the list is read past, and the object, read as one record, is
	// refused by it.
	if _, over := jsonsize.CountValues([]byte(raw), maxRecordValues); over {
		return false, false
	}
	var f map[string]any
	if json.Unmarshal(raw, &f) != nil || f == nil {
		return false, false
	}
	if row, isObj := f["row"].(map[string]any); isObj && key == "rows" {
		if _, idx := f["row_idx"]; idx {
			f, rows = row, true
		}
	}
	if s.mapping.Shape != ShapeAuto {
		for k := range f {
			if s.mappedColumn(k) {
				return rows, true
			}
		}
		return rows, false
	}
	_, err := Detect(f)
	return rows, err == nil
}

// recordField says whether key is a record's field (recordFields, or a
// column of a shape set by hand), whose list is never the records.
func (s *jsonSource) recordField(key string) bool {
	return slices.Contains(recordFields, key) || s.mappedColumn(key)
}

// mappedColumn says whether key is a column the Options' mapping reads
// (a shape set by hand), other than a system prompt or tools.
func (s *jsonSource) mappedColumn(key string) bool {
	if s.mapping.Shape == ShapeAuto {
		return false
	}
	m := s.mapping.withDefaults()
	return key != m.System && key != m.Tools && slices.Contains(m.columns(), key)
}

// row is the record of a datasets-server row, {"row_idx", "row": {...},
// "truncated_cells": [...]}: its "row". A row with truncated cells is
// refused: the API cuts long cells, and the cut text would be learnt.
func (s *jsonSource) row(rec Record) (Record, error, bool) {
	bad := func(msg string) (Record, error, bool) {
		return Record{}, &PosError{File: s.name, Line: rec.Line, Column: rec.Column, Msg: msg, Err: ErrBadValue}, false
	}
	row, ok := rec.Fields["row"].(map[string]any)
	if !ok {
		return bad(fmt.Sprintf("expected a datasets-server row, {\"row_idx\", \"row\": {...}}, as the list's first element is; found %s under \"row\"", typeName(rec.Fields["row"])))
	}
	cut, isList := rec.Fields["truncated_cells"].([]any)
	if v, ok := rec.Fields["truncated_cells"]; ok && v != nil && !isList {
		return bad(fmt.Sprintf("expected truncated_cells to be a list of the row's cut cells, as the datasets-server writes it; found %s", typeName(v)))
	}
	if len(cut) > 0 {
		names := make([]string, len(cut))
		for i, c := range cut {
			names[i] = fmt.Sprint(c)
		}
		return bad(fmt.Sprintf("the datasets-server truncated this row's cells %s (its API cuts long cells), and the cut text would be learnt: download the dataset's own files (its parquet files, or load_dataset(...).to_json)", quoteList(names)))
	}
	rec.Fields, rec.raw = row, rawText(rec.raw).member("row")()
	return rec, nil, false
}

// skip reads past the rest of a list or object already opened (the
// splits of a dataset, read for their keys only).
func (s *jsonSource) skip() error { return s.readPast(false) }

// skipMember reads past the rest of a member's list or object, counting
// its tokens in s.walked: the members of the top-level object read past
// are a record's, when it is one, and a record of more than
// maxRecordValues values is refused after that many tokens rather than
// walked to its end (the decoder allocates each token).
func (s *jsonSource) skipMember() error { return s.readPast(true) }

// readPast reads the tokens of an open list or object to its end; with
// counted, each value counts toward s.walked's bound.
func (s *jsonSource) readPast(counted bool) error {
	for depth := 1; depth > 0; {
		before := s.dec.InputOffset()
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
		case json.Delim(']'), json.Delim('}'):
			depth--
			continue
		}
		if !counted {
			continue
		}
		if s.walked++; s.walked > maxRecordValues {
			return s.errAt(s.elementStart(before), tooManyValues(), ErrRecordTooLarge)
		}
	}
	return nil
}

// valueErr positions an error of decoding a member's value read from
// stream offset before (after its key): a syntax error at its byte, found
// by scanning the value again in the window, as the tokens would have
// placed it; others as tokenErr does.
func (s *jsonSource) valueErr(before int64, err error) error {
	if _, ok := err.(*json.SyntaxError); !ok {
		return s.tokenErr(err)
	}
	k := before - s.tr.winStart
	if k < 0 || k > int64(len(s.tr.win)) {
		return s.tokenErr(err)
	}
	rest := s.tr.win[k:]
	skip := len(rest) - len(bytes.TrimLeft(rest, " \t\r\n"))
	if skip < len(rest) && rest[skip] == ':' {
		skip++
		skip += len(rest[skip:]) - len(bytes.TrimLeft(rest[skip:], " \t\r\n"))
	}
	var v json.RawMessage // the text is checked whole before any of it is decoded
	e2, ok := json.Unmarshal(rest[skip:], &v).(*json.SyntaxError)
	if !ok {
		return s.tokenErr(err)
	}
	return s.errAt(before+int64(skip)+e2.Offset-1, "invalid JSON: "+err.Error(), ErrMalformed)
}

// tokenErr positions an error of the decoder's tokens inside the
// top-level object (fatal: the decoder cannot go on).
func (s *jsonSource) tokenErr(err error) error {
	if pe, ok := err.(*PosError); ok {
		return pe
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return s.errAt(s.tr.winStart+int64(len(s.tr.win)), "unexpected end of file: expected '}' closing the JSON object", ErrMalformed)
	}
	return s.errAt(s.elementStart(s.dec.InputOffset()), "invalid JSON: "+err.Error(), ErrMalformed)
}

// notes are the Report's notes on a wrapped object: the key read, and
// the members beside it that were not.
func (s *jsonSource) notes() []string {
	if !s.wrapped {
		return nil
	}
	note := fmt.Sprintf("the records are the list under the top-level object's key %q", s.key)
	if s.rows {
		note += ", each the \"row\" of a datasets-server row"
	}
	switch {
	case s.nOthers == 1:
		note += fmt.Sprintf("; %s beside it is not read", quoteList(s.others))
	case s.nOthers > len(s.others):
		note += fmt.Sprintf("; %s and %d other members beside it are not read", strings.Join(quoteEach(s.others), ", "), s.nOthers-len(s.others))
	case s.nOthers > 1:
		note += fmt.Sprintf("; %s beside it are not read", quoteList(s.others))
	}
	return []string{note}
}

func quoteEach(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return q
}

// columns says whether an object's fields are a dataset's columns: each a
// list, all of one length n > 0, none of objects (a record's lists,
// messages, hold objects).
func columns(f map[string]any) (n int, ok bool) {
	n = -1
	for _, v := range f {
		l, isList := v.([]any)
		if !isList || n >= 0 && len(l) != n {
			return 0, false
		}
		n = len(l)
		for _, e := range l {
			if _, obj := e.(map[string]any); obj {
				return 0, false
			}
		}
	}
	return n, n > 0
}

// skipBOM drops a UTF-8 byte order mark at the start of r, which JSON
// decoders refuse (Windows tools write one), as the JSONL reader does.
func skipBOM(r io.Reader) io.Reader {
	return &bomReader{r: r}
}

type bomReader struct {
	r    io.Reader
	head []byte // the first bytes, read to look for the mark
	done bool
}

func (b *bomReader) Read(p []byte) (int, error) {
	if !b.done {
		for len(b.head) < 3 {
			buf := make([]byte, 3-len(b.head))
			n, err := b.r.Read(buf)
			b.head = append(b.head, buf[:n]...)
			if err != nil {
				break
			}
		}
		b.done = true
		if string(b.head) == "\xef\xbb\xbf" {
			b.head = nil
		}
	}
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	return b.r.Read(p)
}
