package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseHeader feeds arbitrary bytes to the parser. It must never panic
// and must return an error wrapping ErrCorrupt or ErrUnsupportedDType, or a
// header whose tensors lie inside the input with consistent sizes, and which
// writes back to a file that parses to the same tensors.
//
//	go test ./internal/safetensors -run '^$' -fuzz FuzzParseHeader -fuzztime 60s -fuzzminimizetime 5s
//
// (Without -fuzzminimizetime, minimizing one new input derived from the
// 1.8 kB fixture seeds can use the default 60 s budget by itself.)
//
// The seed corpus in testdata/fuzz/FuzzParseHeader holds small valid files
// and near misses; the real fixtures below are added too.
func FuzzParseHeader(f *testing.F) {
	for _, p := range []string{fixture("llama-tiny", "inputs.safetensors"), fixture("qwen2-tiny", "inputs.safetensors")} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader("fuzz", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedDType) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		var tensors []Tensor
		for i, name := range h.names {
			if i > 0 && h.names[i-1] >= name {
				t.Fatalf("names not sorted and unique: %q then %q", h.names[i-1], name)
			}
			e := h.entries[name]
			if e.begin < 8 || e.end < e.begin || e.end > len(b) {
				t.Fatalf("%q: offsets [%d, %d] outside the %d-byte input", name, e.begin, e.end, len(b))
			}
			tn := Tensor{Name: name, DType: e.dtype, Shape: e.shape, Data: b[e.begin:e.end]}
			if len(tn.Data) != tn.NumElements()*tn.DType.Size() {
				t.Fatalf("%q: %d bytes for shape %v of %s", name, len(tn.Data), tn.Shape, tn.DType)
			}
			tensors = append(tensors, tn)
		}
		var buf bytes.Buffer
		if err := encode(&buf, tensors, h.metadata); err != nil {
			t.Fatal(err)
		}
		h2, err := parseHeader("rewritten", buf.Bytes())
		if err != nil {
			t.Fatalf("a parsed file does not parse once rewritten: %v", err)
		}
		if len(h2.names) != len(h.names) || len(h2.metadata) != len(h.metadata) {
			t.Fatalf("rewrite changed the content: %d/%d tensors, %d/%d metadata keys",
				len(h2.names), len(h.names), len(h2.metadata), len(h.metadata))
		}
		for k, v := range h.metadata {
			if h2.metadata[k] != v {
				t.Fatalf("rewrite changed metadata %q: %q -> %q", k, v, h2.metadata[k])
			}
		}
		out := buf.Bytes()
		for _, want := range tensors {
			e := h2.entries[want.Name]
			sameTensor(t, Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Data: out[e.begin:e.end]}, want)
		}
	})
}

// The committed seeds must stay meaningful: those named valid_* parse, the
// others are rejected, so the fuzzer starts from both sides of the border.
func TestFuzzSeedsParseAsNamed(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseHeader", "*"))
	if err != nil || len(paths) < 10 {
		t.Fatalf("found %d seeds (%v), want at least 10", len(paths), err)
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
			!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s: not a one-value go fuzz corpus file", p)
		}
		b, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		_, err = parseHeader(p, []byte(b))
		if valid := strings.HasPrefix(filepath.Base(p), "valid_"); valid != (err == nil) {
			t.Errorf("%s: err = %v, want valid=%v", p, err, valid)
		}
	}
}
