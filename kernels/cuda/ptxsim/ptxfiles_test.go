package ptxsim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/cuda"
)

// readPTX reads a committed X.ptx.zst as the cuda package does.
func readPTX(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return cuda.DecompressPTX(strings.TrimSuffix(filepath.Base(path), ".zst"), b)
}

// TestLoadAllPTX: every committed PTX file of kernels/cuda parses and
// every kernel in it decodes (all its instructions are simulated).
func TestLoadAllPTX(t *testing.T) {
	files, _ := filepath.Glob("../*.ptx.zst")
	if len(files) == 0 {
		t.Fatal("no ../*.ptx.zst found")
	}
	for _, f := range files {
		src, err := readPTX(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(strings.TrimSuffix(filepath.Base(f), ".zst"), src)
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
