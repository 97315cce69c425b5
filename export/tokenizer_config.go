package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ftune/ftune/internal/fsutil"
)

// writeTokenizerConfig copies the base's tokenizer_config.json into dir
// with its chat_template set to tmpl, for readers older than transformers
// 4.47 that do not read chat_template.jinja: a string (or null) is
// replaced; in a list of named templates the "default" entry's template
// is replaced, or a default entry appended to the list; a file without
// the key gets it after its last key. Only that value changes (sjson
// edits the text in place): every other byte is copied as written, so the
// keys keep their order and the numbers their text (model_max_length is
// often an integer no float64 holds; a Go map re-encoding sorted the keys).
// A file whose template is already tmpl is copied as it is; note says when
// the template was set.
func writeTokenizerConfig(in baseFile, dir, tmpl string) (note string, err error) {
	raw, err := io.ReadAll(io.LimitReader(in.f, MaxCopiedFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("export: read %s: %w", in.path, err)
	}
	if int64(len(raw)) > MaxCopiedFileBytes {
		return "", fmt.Errorf("export: %w", &fsutil.TooLargeError{Path: in.path, Size: -1, Limit: MaxCopiedFileBytes})
	}
	out, changed, err := setChatTemplate(raw, tmpl)
	if err != nil {
		return "", fmt.Errorf("export: %s: %w", in.path, err)
	}
	if changed {
		note = "chat template: the adapter's (the one it was trained with) replaces the base's, in chat_template.jinja and tokenizer_config.json"
	}
	if err := os.WriteFile(filepath.Join(dir, in.name), out, 0o644); err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	return note, nil
}

// setChatTemplate gives raw, a tokenizer_config.json's text, with its
// chat template set to tmpl (writeTokenizerConfig), and whether that
// changed what a reader reads; raw itself when it did not.
func setChatTemplate(raw []byte, tmpl string) ([]byte, bool, error) {
	if err := checkObject(raw); err != nil {
		return nil, false, err
	}
	cur := gjson.GetBytes(raw, "chat_template")
	if !cur.Exists() {
		return appendMember(raw, "chat_template", jsonString(tmpl)), true, nil
	}
	if !cur.IsArray() {
		if cur.Type == gjson.String && cur.Str == tmpl {
			return raw, false, nil
		}
		out, err := sjson.SetRawBytes(raw, "chat_template", jsonString(tmpl))
		return out, err == nil, err
	}
	// Named templates: transformers reads the list as a dict from name to
	// template, so the last entry named "default" is the one it uses.
	entries := cur.Array()
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; e.IsObject() && e.Get("name").String() == "default" && e.Get("name").Type == gjson.String {
			if t := e.Get("template"); t.Type == gjson.String && t.Str == tmpl {
				return raw, false, nil
			}
			out, err := sjson.SetRawBytes(raw, "chat_template."+strconv.Itoa(i)+".template", jsonString(tmpl))
			return out, err == nil, err
		}
	}
	entry := append(append([]byte(`{"name": "default", "template": `), jsonString(tmpl)...), '}')
	out, err := sjson.SetRawBytes(raw, "chat_template.-1", entry)
	return out, err == nil, err
}

// appendMember adds "name": value after the last member of raw, a JSON
// object checkObject accepted, on a line of its own indented as the first
// member is (sjson would write it compactly after the last one's line).
func appendMember(raw []byte, name string, value []byte) []byte {
	end := bytes.LastIndexByte(raw, '}')
	body := bytes.TrimRight(raw[:end], " \t\r\n")
	open := bytes.IndexByte(raw, '{')
	sep := []byte(" ")
	if first := bytes.IndexByte(raw[open+1:], '"'); first >= 0 {
		sep = raw[open+1 : open+1+first] // "\n  " in an indented file, "" in a compact one
	}
	var b bytes.Buffer
	b.Write(body)
	if len(body) > open+1 { // not {}
		b.WriteByte(',')
	}
	b.Write(sep)
	b.WriteString(strconv.Quote(name) + ": ")
	b.Write(value)
	b.Write(raw[len(body):end]) // the whitespace before the closing brace
	b.Write(raw[end:])
	return b.Bytes()
}

// jsonString is s as a JSON string, with <, > and & as they are (Python's
// json.dumps writes them so; special tokens stay readable).
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// checkObject refuses text that is not one JSON object, as transformers'
// json.load would, or whose chat_template key is repeated: Python keeps
// the last, and sjson would edit the first.
func checkObject(raw []byte) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("not a JSON object (want {\"key\": value, ...})")
	}
	seen := false
	for d.More() {
		key, err := d.Token()
		if err != nil {
			return fmt.Errorf("not valid JSON: %w", err)
		}
		if key == "chat_template" {
			if seen {
				return errors.New("chat_template is given twice: keep one")
			}
			seen = true
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return fmt.Errorf("not valid JSON: %w", err)
		}
	}
	if _, err := d.Token(); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("text after the JSON object")
	}
	return nil
}
