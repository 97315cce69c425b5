package safetensors

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScannerMatchesEncodingJSON: the header's scanner accepts exactly the
// JSON values that encoding/json does (on UTF-8 input, which parseHeader
// checks first, and nested no deeper than maxNesting), and decodes strings
// to the same values.
//
//	go test ./internal/safetensors -run '^$' -fuzz FuzzScannerMatchesEncodingJSON -fuzztime 60s -fuzzminimizetime 5s
func FuzzScannerMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, ` {"a" : [1, -0, 0.5, 1e5, 1E+5, 2e-3, true, false, null, "x"]} `,
		`"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t"`, `"\ud800"`, `"\u12"`, `"\x"`, "\"\x01\"", `"é€😀"`,
		`01`, `-`, `1.`, `.5`, `1e`, `+1`, `-01`, `1.5e+`, `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `[1 2]`,
		`nul`, `truex`, `{}}`, `[[[[]]]]`, `{"a":{"b":{"c":[]}}}`, "\t\n\r ", ``, `"`, `"abc`, `{"a":`,
		`{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return
		}
		s := &scanner{b: b}
		_, err := s.skipValue(0)
		if err == nil {
			if s.peek(); s.i < len(b) {
				err = s.unexpected("nothing after the value")
			}
		}
		var se *syntaxError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("%q: error %v is not a syntax error", b, err)
		}
		if err != nil && strings.Contains(err.Error(), "nested deeper") {
			return
		}
		if got, want := err == nil, json.Valid(b); got != want {
			t.Fatalf("%q: scanner says valid=%v (%v), encoding/json says %v", b, got, err, want)
		}
		s = &scanner{b: b}
		if s.peek() == '"' {
			if q, esc, err := s.stringSpan(); err == nil {
				var want string
				if json.Unmarshal(q, &want) != nil || unquote(q, esc) != want {
					t.Fatalf("%q: decoded to %q, encoding/json gives %q", q, unquote(q, esc), want)
				}
			}
		}
	})
}
