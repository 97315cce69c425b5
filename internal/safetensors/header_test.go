package safetensors

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseHeaderRejects(t *testing.T) {
	data16 := make([]byte, 16)
	hugeLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(hugeLen, 200_000_000)
	pastEnd := make([]byte, 16)
	binary.LittleEndian.PutUint64(pastEnd, 9)

	cases := []struct {
		name    string
		file    []byte
		is      error
		wantAll []string // substrings the message must contain
	}{
		{"empty file", nil, ErrCorrupt, []string{"0 bytes", "8-byte header length"}},
		{"five bytes", []byte{1, 2, 3, 4, 5}, ErrCorrupt, []string{"5 bytes", "truncated"}},
		{"header length past end", pastEnd, ErrCorrupt, []string{"header length 9", "16-byte file"}},
		{"header length over limit", hugeLen, ErrCorrupt, []string{"header length 200000000", "limit"}},
		{"header too short", rawFile("{", nil), ErrCorrupt, []string{"header length 1"}},
		{"not an object", rawFile("[1, 2]", nil), ErrCorrupt, []string{`starts with '['`}},
		{"invalid JSON", rawFile(`{"a": {"dtype": "F32",`, nil), ErrCorrupt, []string{"not a JSON object"}},
		{"trailing garbage", rawFile(`{} x`, nil), ErrCorrupt, []string{"not a JSON object"}},
		{"second object", rawFile(`{}{}`, nil), ErrCorrupt, []string{"after the object"}},
		{"invalid UTF-8", rawFile("{\"\xff\":1}", nil), ErrCorrupt, []string{"UTF-8"}},
		{"duplicate key", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}),
			ErrCorrupt, []string{`duplicate key "w"`}},
		{"unknown dtype", rawFile(`{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, []byte{1}),
			ErrUnsupportedDType, []string{`tensor "w"`, `dtype "F4"`}},
		{"lower-case dtype", rawFile(`{"w":{"dtype":"f32","shape":[],"data_offsets":[0,4]}}`, data16[:4]),
			ErrUnsupportedDType, []string{`tensor "w"`, `dtype "f32"`}},
		{"missing dtype", rawFile(`{"w":{"shape":[1],"data_offsets":[0,1]}}`, []byte{1}),
			ErrCorrupt, []string{`tensor "w"`, "dtype is missing"}},
		{"missing shape", rawFile(`{"w":{"dtype":"U8","data_offsets":[0,1]}}`, []byte{1}),
			ErrCorrupt, []string{`tensor "w"`, "shape: missing"}},
		{"null shape", rawFile(`{"w":{"dtype":"U8","shape":null,"data_offsets":[0,1]}}`, []byte{1}),
			ErrCorrupt, []string{`tensor "w"`, "shape: got null"}},
		{"unknown field", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"stride":[1]}}`, []byte{1}),
			ErrCorrupt, []string{`tensor "w"`, `unknown field "stride"`}},
		{"entry not object", rawFile(`{"w":[1]}`, nil), ErrCorrupt, []string{`tensor "w"`, "want an object"}},
		{"negative dim", rawFile(`{"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}}`, data16),
			ErrCorrupt, []string{`tensor "w"`, "dimension 1 is -2", ">= 0"}},
		{"fractional dim", rawFile(`{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}}`, data16),
			ErrCorrupt, []string{`tensor "w"`, "value 0 is 2.5", "want an integer"}},
		{"dim beyond int64", rawFile(`{"w":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,16]}}`, data16),
			ErrCorrupt, []string{`tensor "w"`, "want an integer"}},
		{"three offsets", rawFile(`{"w":{"dtype":"U8","shape":[16],"data_offsets":[0,8,16]}}`, data16),
			ErrCorrupt, []string{`tensor "w"`, "data_offsets has 3 values"}},
		{"begin after end", rawFile(`{"w":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}`, data16),
			ErrCorrupt, []string{`tensor "w"`, "data_offsets [8, 4]", "begin <= end"}},
		{"offsets past buffer", rawFile(`{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}`, data16),
			ErrCorrupt, []string{`tensor "w"`, "data_offsets [0, 32]", "16-byte data buffer"}},
		{"size mismatch", rawFile(`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, data16[:12]),
			ErrCorrupt, []string{`tensor "w"`, "hold 12 bytes, want 16", "shape [2 2] of F32"}},
		{"shape overflows", rawFile(`{"w":{"dtype":"F64","shape":[65536,65536,65536,65536],"data_offsets":[0,16]}}`, data16),
			ErrCorrupt, []string{`tensor "w"`, "more than 2^64"}},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, data16),
			ErrCorrupt, []string{`tensor "b"`, `overlap tensor "a"`, "ends at 12"}},
		{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, data16),
			ErrCorrupt, []string{"bytes [4, 8) belong to no tensor", `"b"`}},
		{"buffer not covered", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, data16),
			ErrCorrupt, []string{"cover 8 bytes of the 16-byte data buffer"}},
		{"data but no tensors", rawFile(`{}`, data16), ErrCorrupt, []string{"cover 0 bytes of the 16-byte data buffer"}},
		{"metadata not object", rawFile(`{"__metadata__":"pt"}`, nil), ErrCorrupt, []string{"__metadata__", "want an object of strings"}},
		{"metadata value not string", rawFile(`{"__metadata__":{"step":3}}`, nil), ErrCorrupt, []string{"__metadata__", `key "step"`, "want a string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseHeader("x.safetensors", tc.file)
			checkErr(t, err, tc.is, append(tc.wantAll, "x.safetensors"))

			// The same bytes through Open: the error names the real path.
			path := writeTemp(t, "bad.safetensors", tc.file)
			f, err := Open(path)
			if err == nil {
				f.Close()
			}
			checkErr(t, err, tc.is, append(tc.wantAll, path))
		})
	}
}

func checkErr(t *testing.T, err, is error, wantAll []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one wrapping %v", is)
	}
	if !errors.Is(err, is) {
		t.Fatalf("error %q does not wrap %v", err, is)
	}
	for _, s := range wantAll {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

func TestParseHeaderAccepts(t *testing.T) {
	cases := []struct {
		name   string
		file   []byte
		names  []string
		shapes map[string][]int
		meta   map[string]string
	}{
		{"empty header", rawFile("{}", nil), nil, nil, nil},
		{"padded empty header", rawFile("{}      ", nil), nil, nil, nil},
		{"scalar", rawFile(`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, f32(1.5)),
			[]string{"s"}, map[string][]int{"s": {}}, nil},
		{"zero-size tensors share an offset", rawFile(
			`{"z2":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z1":{"dtype":"I64","shape":[0],"data_offsets":[4,4]}}`, f32(2)),
			[]string{"a", "z1", "z2"}, map[string][]int{"a": {1}, "z1": {0}, "z2": {0, 3}}, nil},
		{"offsets in any header order", rawFile(
			`{"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}`, []byte{1, 2, 3}),
			[]string{"a", "b"}, map[string][]int{"a": {1}, "b": {2}}, nil},
		{"null metadata", rawFile(`{"__metadata__":null}`, nil), nil, nil, nil},
		{"metadata", rawFile(`{"__metadata__":{"format":"pt","note":"<&>"}}  `, nil),
			nil, nil, map[string]string{"format": "pt", "note": "<&>"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parseHeader("ok.safetensors", tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(h.names, ",") != strings.Join(tc.names, ",") {
				t.Fatalf("names %v, want %v", h.names, tc.names)
			}
			for name, shape := range tc.shapes {
				if got := h.entries[name].shape; len(got) != len(shape) || (len(shape) > 0 && got[0] != shape[0]) {
					t.Fatalf("%s: shape %v, want %v", name, got, shape)
				}
			}
			if len(h.metadata) != len(tc.meta) {
				t.Fatalf("metadata %v, want %v", h.metadata, tc.meta)
			}
			for k, v := range tc.meta {
				if h.metadata[k] != v {
					t.Fatalf("metadata[%q] = %q, want %q", k, h.metadata[k], v)
				}
			}
		})
	}
}

// Every prefix of a real file must be rejected as corrupt (never accepted,
// never a panic): this is what an interrupted download looks like.
func TestTruncatedFixtureRejected(t *testing.T) {
	full, err := os.ReadFile(fixture("llama-tiny", "inputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseHeader("full", full); err != nil {
		t.Fatalf("the untruncated fixture does not parse: %v", err)
	}
	for n := 0; n < len(full); n++ {
		_, err := parseHeader("cut.safetensors", full[:n])
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrCorrupt", n, len(full), err)
		}
	}
	// A cut inside the data must say which tensor runs past the end.
	_, err = parseHeader("cut.safetensors", full[:len(full)-3])
	checkErr(t, err, ErrCorrupt, []string{`tensor "inv_freq"`, "run past", "truncated"})
}

func TestDTypeSizes(t *testing.T) {
	want := map[DType]int{F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1,
		U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8E4M3: 1, F8E5M2: 1}
	for d, size := range want {
		if d.Size() != size {
			t.Errorf("%s.Size() = %d, want %d", d, d.Size(), size)
		}
		if got, err := ParseDType(string(d)); err != nil || got != d {
			t.Errorf("ParseDType(%q) = %q, %v", d, got, err)
		}
		if layoutRank(d) < 0 {
			t.Errorf("%s has no layout rank", d)
		}
	}
	for _, bad := range []string{"", "f32", "F4", "F8_E8M0", "C64", "float32"} {
		if _, err := ParseDType(bad); !errors.Is(err, ErrUnsupportedDType) || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseDType(%q): err = %v, want ErrUnsupportedDType naming it", bad, err)
		}
		if DType(bad).Size() != 0 || DType(bad).Valid() {
			t.Errorf("DType(%q) reports a size", bad)
		}
	}
}
