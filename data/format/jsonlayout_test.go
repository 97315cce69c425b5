package format

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readNotes reads a file written with content, giving its examples (their
// Source the base name and line) and the Report's notes.
func readNotes(t *testing.T, file, content string, opts Options) ([]Example, []string, error) {
	t.Helper()
	return readPath(t, writeFile(t, file, content), opts)
}

func readPath(t *testing.T, path string, opts Options) ([]Example, []string, error) {
	t.Helper()
	exs, rep, err := ReadAll(path, opts)
	for i := range exs {
		exs[i].Source = filepath.Base(exs[i].Source)
	}
	return exs, rep.Notes, err
}

// qa is a chat record's JSON: question q, answer a.
func qa(q, a string) string {
	return fmt.Sprintf(`{"messages": [{"role": "user", "content": %q}, {"role": "assistant", "content": %q}]}`, q, a)
}

// TestJSONLinesNamedJSON: what datasets' Dataset.to_json writes by
// default (lines=True) under its usual name, data.json, is JSON Lines: a
// .json file holding two or more JSON values on lines of their own is
// read as JSONL, saying so, and KindOf says jsonl (what a run prints).
// A .json file holding one array, or one object, is JSON.
func TestJSONLinesNamedJSON(t *testing.T) {
	path := filepath.Join("testdata", "migration", "hf_to_json_default.json")
	if k, err := KindOf(path); err != nil || k != KindJSONL {
		t.Errorf("KindOf(%s) = %q, %v; want jsonl", path, k, err)
	}
	exs, notes, err := readPath(t, path, Options{})
	if err != nil || len(exs) != 12 {
		t.Fatalf("got %d examples, %v; want 12", len(exs), err)
	}
	if want := (Example{Messages: chat("user", "Capital of Peru?", "assistant", "Lima"), Source: "hf_to_json_default.json:1"}); !reflect.DeepEqual(exs[0], want) || exs[11].Source != "hf_to_json_default.json:12" {
		t.Errorf("got %+v ... %s", exs[0], exs[11].Source)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "JSON Lines") || !strings.Contains(notes[0], "to_json") {
		t.Errorf("notes = %q, want one saying the .json file is read as JSON Lines", notes)
	}

	// A record error keeps its line, as a .jsonl file's would.
	_, _, err = readNotes(t, "d.json", qa("a", "b")+"\n"+`{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": 5}]}`+"\n", Options{})
	var pe *PosError
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(err.Error(), "d.json:2:") {
		t.Errorf("a bad second line: err = %v, want one at d.json:2", err)
	}

	for _, tc := range []struct {
		name, content string
		kind          Kind
	}{
		{"an array", "[\n" + qa("a", "b") + ",\n" + qa("c", "d") + "\n]\n", KindJSON},
		{"one object on one line", qa("a", "b") + "\n", KindJSON},
		{"one object, no newline", qa("a", "b"), KindJSON},
		{"one pretty-printed object", "{\n  \"text\": \"a\"\n}\n", KindJSON},
		{"two lines, a BOM, blank lines and CRLF", "\xef\xbb\xbf" + qa("a", "b") + "\r\n\r\n" + qa("c", "d") + "\r\n", KindJSONL},
		{"two lines, the second bad", qa("a", "b") + "\n" + "{oops\n", KindJSONL},
		// Concatenated pretty-printed objects are not JSON Lines: the
		// JSON reader refuses them, naming what follows the first.
		{"two pretty-printed objects", "{\n\"text\": \"a\"\n}\n{\n\"text\": \"b\"\n}\n", KindJSON},
		{"a string holding a newline escape and braces", `{"text": "a}\n{"}` + "\n" + `{"text": "b"}` + "\n", KindJSONL},
		{"empty", "", KindJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "d.json", tc.content)
			if k, err := KindOf(p); err != nil || k != tc.kind {
				t.Errorf("KindOf = %q, %v; want %q", k, err, tc.kind)
			}
		})
	}

	// One object is one record, as the same line in a .jsonl file is.
	exs, notes, err = readNotes(t, "one.json", qa("a", "b")+"\n", Options{})
	if err != nil || len(exs) != 1 || exs[0].Source != "one.json:1" || len(notes) != 0 {
		t.Errorf("one object: got %+v, notes %q, %v", exs, notes, err)
	}

	// The look-ahead is bounded: a first line longer than it leaves the
	// file JSON, whose reader then names what follows the first value.
	defer func(n int64) { jsonLinesLookahead = n }(jsonLinesLookahead)
	jsonLinesLookahead = 64
	long := fmt.Sprintf(`{"text": %q}`, strings.Repeat("x", 100))
	p := writeFile(t, "long.json", long+"\n"+long+"\n")
	if k, _ := KindOf(p); k != KindJSON {
		t.Errorf("a first line past the look-ahead: KindOf = %q, want json", k)
	}
	_, _, err = readPath(t, p, Options{})
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(err.Error(), "JSON Lines") || !strings.Contains(err.Error(), "data.format") {
		t.Errorf("JSON Lines past the look-ahead: err = %v, want one at line 2 pointing at data.format jsonl", err)
	}

	// data.format json reads the file as JSON whatever it holds.
	_, _, err = readNotes(t, "d.json", qa("a", "b")+"\n"+qa("c", "d")+"\n", Options{Kind: KindJSON})
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(err.Error(), "JSON Lines") {
		t.Errorf("data.format json on JSON Lines: err = %v, want one at line 2 naming JSON Lines", err)
	}
}

// TestWrappedJSON: a JSON object whose one list of records sits under a
// key ({"data": [...]}, {"train": [...]}, the datasets-server API's
// {"rows": [{"row": {...}}]}) is read as those records, each with its own
// line, with a note naming the key and what else the object holds; an
// object holding several such lists (a split per key) is refused, naming
// them.
func TestWrappedJSON(t *testing.T) {
	exs, notes, err := readPath(t, filepath.Join("testdata", "migration", "hf_wrapped.json"), Options{})
	if err != nil || len(exs) != 12 {
		t.Fatalf("got %d examples, %v; want 12", len(exs), err)
	}
	if want := (Example{Messages: chat("user", "Capital of Peru?", "assistant", "Lima"), Source: "hf_wrapped.json:1"}); !reflect.DeepEqual(exs[0], want) {
		t.Errorf("got %+v", exs)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `"data"`) || !strings.Contains(notes[0], `"version"`) {
		t.Errorf("notes = %q, want one naming the key read, \"data\", and the one not, \"version\"", notes)
	}

	for _, key := range []string{"data", "train", "examples", "records"} {
		t.Run(key, func(t *testing.T) {
			content := fmt.Sprintf("{\n  %q: [\n    %s,\n    %s\n  ]\n}\n", key, qa("a", "b"), qa("c", "d"))
			exs, notes, err := readNotes(t, "w.json", content, Options{})
			want := []Example{{Messages: chat("user", "a", "assistant", "b"), Source: "w.json:3"}, {Messages: chat("user", "c", "assistant", "d"), Source: "w.json:4"}}
			if err != nil || !reflect.DeepEqual(exs, want) {
				t.Fatalf("got %+v, %v\nwant %+v", exs, err, want)
			}
			if len(notes) != 1 || !strings.Contains(notes[0], fmt.Sprintf("%q", key)) {
				t.Errorf("notes = %q, want one naming %q", notes, key)
			}
		})
	}

	// The datasets-server API's answer (/rows, /first-rows): each row's
	// record is its "row"; its schema, "features", is not a record list.
	rows := `{"features": [{"feature_idx": 0, "name": "text", "type": {"dtype": "string", "_type": "Value"}}],
"rows": [
{"row_idx": 0, "row": {"text": "One."}, "truncated_cells": []},
{"row_idx": 1, "row": {"text": "Two."}, "truncated_cells": []}
],
"num_rows_total": 2, "num_rows_per_page": 100, "partial": false}
`
	exs, notes, err = readNotes(t, "rows.json", rows, Options{})
	if want := []Example{{Text: "One.", Source: "rows.json:3"}, {Text: "Two.", Source: "rows.json:4"}}; err != nil || !reflect.DeepEqual(exs, want) {
		t.Errorf("datasets-server rows: got %+v, %v\nwant %+v", exs, err, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `"rows"`) || !strings.Contains(notes[0], `"row"`) {
		t.Errorf("datasets-server rows: notes = %q", notes)
	}

	// A row whose cells the server cut is refused: training on it would
	// learn the cut text.
	_, _, err = readNotes(t, "rows.json", strings.Replace(rows, `"Two."}, "truncated_cells": []`, `"Tw"}, "truncated_cells": ["text"]`, 1), Options{})
	var pe *PosError
	if !errors.As(err, &pe) || pe.Line != 4 || !strings.Contains(err.Error(), `"text"`) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a truncated row: err = %v, want one at line 4 naming the cell", err)
	}

	// truncated_cells that is not a list cannot say no cell was cut.
	_, _, err = readNotes(t, "rows.json", strings.Replace(rows, `"Two."}, "truncated_cells": []`, `"Tw"}, "truncated_cells": "text"`, 1), Options{})
	if !errors.As(err, &pe) || pe.Line != 4 || !strings.Contains(err.Error(), "expected truncated_cells to be a list") {
		t.Errorf("truncated_cells a string: err = %v, want one at line 4", err)
	}

	// Splits under their keys: refused, naming them and the way to give
	// them.
	splits := fmt.Sprintf("{\"train\": [%s, %s],\n \"validation\": [%s],\n \"test\": [%s]}\n", qa("a", "b"), qa("c", "d"), qa("e", "f"), qa("g", "h"))
	_, _, err = readNotes(t, "s.json", splits, Options{})
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(err.Error(), `"train", "validation" and "test"`) || !strings.Contains(err.Error(), "validation.jsonl") {
		t.Errorf("splits under keys: err = %v, want one at line 2 naming \"train\", \"validation\" and \"test\" and saying how to give splits", err)
	}
	// The look for more keys stops at the record limit, and says so.
	big := fmt.Sprintf("{\"train\": [%s],\n \"validation\": [%s],\n \"notes\": %q, \"test\": [%s]}\n", qa("a", "b"), qa("c", "d"), strings.Repeat("x", 2<<20), qa("e", "f"))
	_, _, err = readNotes(t, "s.json", big, Options{MaxRecordBytes: 256 << 10})
	if !errors.As(err, &pe) || pe.Line != 2 || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `"train" and "validation" (and perhaps more after them)`) {
		t.Errorf("splits past the record limit: err = %v", err)
	}

	// Refused with what was expected, at the line.
	for _, tc := range []struct {
		name, content string
		line          int
		want          string
	}{
		{"a string at the top", `"hello"`, 1, "expected a JSON array"},
		{"a record list that is not", "{\"data\": [\n" + qa("a", "b") + ",\n 5]}", 3, "expected a JSON object as array element"},
		{"columns (Dataset.to_dict)", `{"instruction": ["a", "b"], "output": ["c", "d"]}`, 1, "columns"},
		{"columns of conversations", "{\"messages\": [[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]]}", 1, "columns"},
		{"no record list, not a record", `{"version": "1.0", "data": []}`, 1, "cannot detect the shape"},
		{"garbage after the object", "{\"data\": [" + qa("a", "b") + "]}\nx", 2, "expected end of file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readNotes(t, "w.json", tc.content, Options{})
			if !errors.As(err, &pe) || pe.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one at line %d saying %q", err, tc.line, tc.want)
			}
		})
	}

	// With the shape set by hand, a list whose first object has one of
	// its columns is the records; an object with one is a record.
	dialog := `{"dialog": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`
	byHand := Options{Mapping: Mapping{Shape: ShapeChat, Messages: "dialog"}}
	for _, content := range []string{`{"data": [` + dialog + `]}`, dialog} {
		exs, _, err := readNotes(t, "h.json", content, byHand)
		if want := []Example{{Messages: chat("user", "a", "assistant", "b"), Source: "h.json:1"}}; err != nil || !reflect.DeepEqual(exs, want) {
			t.Errorf("%s with the shape set: got %+v, %v", content, exs, err)
		}
	}

	// A record whose own fields hold lists of objects (tools, messages)
	// is a record, not a wrapper.
	rec := `{"tools": [{"type": "function", "function": {"name": "f"}}], "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`
	exs, notes, err = readNotes(t, "r.json", rec, Options{})
	if err != nil || len(exs) != 1 || exs[0].Tools == "" || len(notes) != 0 {
		t.Errorf("one record with tools: got %+v, notes %q, %v", exs, notes, err)
	}
}
