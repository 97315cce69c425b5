package safetensors

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

// sampleTensors has one tensor of every dtype, a scalar, an empty tensor
// and names that JSON must escape.
func sampleTensors() []Tensor {
	var ts []Tensor
	dtypes := []DType{F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8E4M3, F8E5M2}
	for i, d := range dtypes {
		shape := []int{i%3 + 1, 3}
		data := make([]byte, shape[0]*shape[1]*d.Size())
		for j := range data {
			data[j] = byte(i*31 + j)
		}
		ts = append(ts, Tensor{Name: "t." + string(d), DType: d, Shape: shape, Data: data})
	}
	return append(ts,
		Tensor{Name: "scalar", DType: F32, Shape: []int{}, Data: f32(3.25)},
		Tensor{Name: "empty", DType: BF16, Shape: []int{4, 0}, Data: nil},
		Tensor{Name: `quote"back\slash<&>é`, DType: U8, Shape: []int{1}, Data: []byte{7}},
	)
}

func TestWriteReadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	in := sampleTensors()
	meta := map[string]string{"format": "pt", "odd": "<&>\"\n"}
	if err := Write(path, in, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Len() != len(in) {
		t.Fatalf("%d tensors, want %d", f.Len(), len(in))
	}
	for _, want := range in {
		got, err := f.Tensor(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		sameTensor(t, got, want)
		// The layout promises natural alignment within the mapping (whose
		// start is page-aligned), so typed views need no copy.
		if len(got.Data) > 0 {
			off := int(uintptrOf(got.Data) - uintptrOf(f.data))
			if off%got.DType.Size() != 0 {
				t.Errorf("%s: data at file offset %d, not a multiple of %d", got.Name, off, got.DType.Size())
			}
		}
	}
	gotMeta := f.Metadata()
	if len(gotMeta) != len(meta) || gotMeta["odd"] != meta["odd"] || gotMeta["format"] != "pt" {
		t.Fatalf("metadata %q, want %q", gotMeta, meta)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 {
		t.Fatalf("header length %d is not a multiple of 8", n)
	}
	hdr := string(raw[8 : 8+n])
	if trimmed := strings.TrimRight(hdr, " "); !strings.HasSuffix(trimmed, "}") || len(hdr)-len(trimmed) >= 8 {
		t.Fatalf("header padding is not 0-7 spaces after the object: %q", hdr[len(hdr)-10:])
	}
	if !strings.HasPrefix(hdr, `{"__metadata__":{"format":"pt",`) {
		t.Fatalf("header does not start with the sorted metadata: %.60s", hdr)
	}
	if !strings.Contains(hdr, `<&>`) {
		t.Fatal("names were HTML-escaped; they must be written as is")
	}
}

// uintptrOf returns the address of the first byte of b.
func uintptrOf(b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

func TestWriteNilMetadataAndEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.safetensors")
	if err := Write(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// What the reference implementation writes for no tensors and no metadata.
	want := append([]byte{8, 0, 0, 0, 0, 0, 0, 0}, "{}      "...)
	if string(raw) != string(want) {
		t.Fatalf("file = %q, want %q", raw, want)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Len() != 0 || f.Metadata() != nil {
		t.Fatalf("got %d tensors, metadata %v", f.Len(), f.Metadata())
	}
}

func TestWriteRejectsInvalidTensors(t *testing.T) {
	good := Tensor{Name: "w", DType: F32, Shape: []int{2}, Data: f32(1, 2)}
	cases := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		is      error
		want    []string
	}{
		{"short data", []Tensor{{Name: "w", DType: F32, Shape: []int{2, 2}, Data: f32(1, 2, 3)}}, nil,
			ErrInvalid, []string{`tensor "w"`, "data has 12 bytes, want 16"}},
		{"negative dim", []Tensor{{Name: "w", DType: F32, Shape: []int{-1}, Data: nil}}, nil,
			ErrInvalid, []string{`tensor "w"`, "dimension 0 is -1"}},
		{"unknown dtype", []Tensor{{Name: "w", DType: "F4", Shape: []int{1}, Data: []byte{0}}}, nil,
			ErrUnsupportedDType, []string{`tensor "w"`, `dtype "F4"`}},
		{"duplicate", []Tensor{good, good}, nil, ErrInvalid, []string{`tensor "w"`, "duplicate"}},
		{"reserved name", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}, nil,
			ErrInvalid, []string{"reserved"}},
		{"name not UTF-8", []Tensor{{Name: "w\xff", DType: U8, Shape: []int{0}}}, nil,
			ErrInvalid, []string{"UTF-8"}},
		{"metadata not UTF-8", []Tensor{good}, map[string]string{"k": "\xfe"}, ErrInvalid, []string{`metadata "k"`}},
		{"shape overflow", []Tensor{{Name: "w", DType: F64, Shape: []int{1 << 30, 1 << 30, 1 << 30}}}, nil,
			ErrInvalid, []string{"overflows"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.safetensors")
			if err := os.WriteFile(path, []byte("previous"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Write(path, tc.tensors, tc.meta)
			checkErr(t, err, tc.is, append(tc.want, path))
			if got, _ := os.ReadFile(path); string(got) != "previous" {
				t.Fatal("a rejected Write changed the existing file")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Fatalf("a rejected Write left %d entries in the folder", len(ents))
			}
		})
	}
}

func TestWriteIntoMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "x.safetensors")
	err := Write(path, sampleTensors(), nil)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want os.ErrNotExist naming %s", err, path)
	}
}

// filled is tensors with each one's data produced by Fill; calls counts
// the Fill calls.
func filled(ts []Tensor, calls *int) []Tensor {
	out := make([]Tensor, len(ts))
	for i, t := range ts {
		data := t.Data
		t.Data = nil
		t.Fill = func() ([]byte, error) {
			*calls++
			return append([]byte(nil), data...), nil
		}
		out[i] = t
	}
	return out
}

// TestFillWritesTheSameBytes: a file written from Fill tensors is byte for
// byte the file written from the same tensors' Data, single or sharded,
// and each Fill runs once.
func TestFillWritesTheSameBytes(t *testing.T) {
	dir := t.TempDir()
	in := sampleTensors()
	meta := map[string]string{"format": "pt"}
	calls := 0
	if err := Write(filepath.Join(dir, "data.safetensors"), in, meta); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "fill.safetensors"), filled(in, &calls), meta); err != nil {
		t.Fatal(err)
	}
	if calls != len(in) {
		t.Errorf("Fill ran %d times for %d tensors", calls, len(in))
	}
	a, _ := os.ReadFile(filepath.Join(dir, "data.safetensors"))
	b, _ := os.ReadFile(filepath.Join(dir, "fill.safetensors"))
	if len(a) == 0 || string(a) != string(b) {
		t.Errorf("Fill wrote %d bytes that differ from Data's %d", len(b), len(a))
	}

	for _, sub := range []string{"data", "fill"} {
		ts := in
		if sub == "fill" {
			ts = filled(in, &calls)
		}
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteSharded(filepath.Join(dir, sub), "model", ts, 40, meta); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, "data"))
	if err != nil || len(ents) < 3 {
		t.Fatalf("sharded: %d files (%v), want several shards and an index", len(ents), err)
	}
	for _, e := range ents {
		a, _ := os.ReadFile(filepath.Join(dir, "data", e.Name()))
		b, err := os.ReadFile(filepath.Join(dir, "fill", e.Name()))
		if err != nil || string(a) != string(b) {
			t.Errorf("sharded %s: Fill's file differs from Data's (%v)", e.Name(), err)
		}
	}
}

// TestFillErrorsLeaveNoFile: a Fill that fails, or gives the wrong number
// of bytes, ends the write with its error and leaves no file; Data and
// Fill together are refused before anything is written.
func TestFillErrorsLeaveNoFile(t *testing.T) {
	boom := errors.New("boom")
	for name, fill := range map[string]func() ([]byte, error){
		"error":      func() ([]byte, error) { return nil, boom },
		"wrong size": func() ([]byte, error) { return make([]byte, 3), nil },
	} {
		path := filepath.Join(t.TempDir(), "x.safetensors")
		ts := []Tensor{{Name: "a", DType: F32, Shape: []int{2}, Data: f32(1, 2)}, {Name: "b", DType: F32, Shape: []int{2}, Fill: fill}}
		err := Write(path, ts, nil)
		if err == nil || (name == "error" && !errors.Is(err, boom)) || (name == "wrong size" && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: Write gave %v", name, err)
		}
		if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
			t.Errorf("%s: a failed write left %d file(s)", name, len(ents))
		}
	}
	both := []Tensor{{Name: "a", DType: F32, Shape: []int{1}, Data: f32(1), Fill: func() ([]byte, error) { return f32(1), nil }}}
	if err := Write(filepath.Join(t.TempDir(), "x.safetensors"), both, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "both Data and Fill") {
		t.Errorf("Data and Fill together: %v", err)
	}
}
