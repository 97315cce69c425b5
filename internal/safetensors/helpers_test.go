package safetensors

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// rawFile assembles a file from a header exactly as given (no padding) and
// a data buffer, so tests can build every kind of broken file.
func rawFile(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// writeTemp stores b as name in a fresh temporary folder and returns its path.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// f32 encodes float32 values little-endian.
func f32(vals ...float32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// fixture returns the path of a file under the repository's testdata/fixtures
// (a copy of the shared fixtures, see testdata/fixtures/README.md).
func fixture(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata", "fixtures"}, parts...)...)
}

// tinyBase returns the path of a file of the embedded tiny-base model.
func tinyBase(name string) string {
	return filepath.Join("..", "..", "assets", "models", "tiny-base", name)
}

// sameTensor compares two tensors field by field.
func sameTensor(t *testing.T, got, want Tensor) {
	t.Helper()
	if got.Name != want.Name || got.DType != want.DType {
		t.Fatalf("tensor %q %s, want %q %s", got.Name, got.DType, want.Name, want.DType)
	}
	if len(got.Shape) != len(want.Shape) {
		t.Fatalf("tensor %q: shape %v, want %v", want.Name, got.Shape, want.Shape)
	}
	for i := range got.Shape {
		if got.Shape[i] != want.Shape[i] {
			t.Fatalf("tensor %q: shape %v, want %v", want.Name, got.Shape, want.Shape)
		}
	}
	if string(got.Data) != string(want.Data) {
		t.Fatalf("tensor %q: data differs (%d bytes vs %d)", want.Name, len(got.Data), len(want.Data))
	}
}
