package gguf

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/tensor"
)

// A NaN in an adapter stops both GGUF exports, naming the tensor, before
// a file is written.
func TestWriteRefusesNonFinite(t *testing.T) {
	m, tok, _ := loadTiny(t)
	a := randomAdapter(t, m, lora.NewConfig(4, 8, "q_proj", "v_proj"))
	mod := a.Modules()[0]
	b := a.Layers[mod].A.Value
	vals := b.F32()
	vals[0] = float32(math.Inf(1))
	b.CopyFrom(tensor.FromHost(m.Backend, tensor.F32, vals, b.Shape()...).To(b.DType()))

	dir := t.TempDir()
	model := filepath.Join(dir, "model.gguf")
	if err := WriteModelWith(context.Background(), model, m, tok, Options{FileType: FileF16, Adapter: a}); !errors.Is(err, export.ErrNonFinite) || !strings.Contains(err.Error(), mod) {
		t.Fatalf("GGUF model with an Inf adapter: err = %v, want ErrNonFinite naming %s", err, mod)
	}
	adapter := filepath.Join(dir, "adapter.gguf")
	if err := WriteLoRA(adapter, m, a, FileF16); !errors.Is(err, export.ErrNonFinite) || !strings.Contains(err.Error(), mod+".lora_A.weight") {
		t.Fatalf("GGUF LoRA with an Inf adapter: err = %v, want ErrNonFinite naming %s.lora_A.weight", err, mod)
	}
	for _, p := range []string{model, adapter} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s was written", p)
		}
	}
	// The model's weights are written as they are merged: the refused
	// write's temporary file is gone too.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the refused exports left %d file(s) in %s", len(ents), dir)
	}
}
