package ptxsim

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoadAllPTX: every committed PTX file of kernels/cuda parses and
// every kernel in it decodes (all its instructions are simulated).
func TestLoadAllPTX(t *testing.T) {
	files, _ := filepath.Glob("../*.ptx")
	for _, f := range files {
		src, _ := os.ReadFile(f)
		m, err := Load(filepath.Base(f), string(src))
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
