package ptxsim

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// inflate reads a committed X.ptx.gz (kernels/cuda stores its PTX gzipped).
func inflate(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(zr)
	return string(b), err
}

// TestLoadAllPTX: every committed PTX file of kernels/cuda parses and
// every kernel in it decodes (all its instructions are simulated).
func TestLoadAllPTX(t *testing.T) {
	files, _ := filepath.Glob("../*.ptx.gz")
	if len(files) == 0 {
		t.Fatal("no ../*.ptx.gz found")
	}
	for _, f := range files {
		src, err := inflate(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(strings.TrimSuffix(filepath.Base(f), ".gz"), src)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, k := range m.Kernels() {
			if _, err := m.Kernel(k); err != nil {
				t.Error(err)
			}
		}
	}
}
