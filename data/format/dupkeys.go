package format

import (
	"bytes"
	"encoding/json"
)

// duplicateKey finds the first object key that appears twice in the same
// JSON object of raw (at any depth), with the byte offset of its second
// occurrence (exact when the key has no escapes).
// encoding/json keeps the last value of a repeated key without a word, so
// {"content": "a", "content": "b"} would silently train on "b". raw must
// be valid JSON.
func duplicateKey(raw []byte) (key string, offset int64, found bool) {
	type frame struct {
		object    bool
		expectKey bool
		keys      map[string]bool
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	// value marks that a value ended: in an object, a key comes next.
	value := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", 0, false
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, frame{object: true, expectKey: true, keys: map[string]bool{}})
			case '[':
				stack = append(stack, frame{})
			case '}', ']':
				stack = stack[:len(stack)-1]
				value()
			}
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			k, _ := tok.(string)
			if stack[n-1].keys[k] {
				return k, dec.InputOffset() - int64(len(k)) - 2, true
			}
			stack[n-1].keys[k] = true
			stack[n-1].expectKey = false
			continue
		}
		value()
	}
}
