package gguf

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/lora"
)

// TestLoRAVariantsInGGUF: llama.cpp's LoRA adapters are A/B pairs, so a
// DoRA adapter or one with modules_to_save is refused as a GGUF adapter
// with the reason and the way out, while the merged GGUF of the same
// adapters is written.
func TestLoRAVariantsInGGUF(t *testing.T) {
	m, tok, _ := loadTiny(t)
	dora := lora.NewConfig(4, 8, "q_proj")
	dora.UseDoRA = true
	toSave := lora.NewConfig(4, 8, "q_proj")
	toSave.ModulesToSave = []string{"o_proj"}
	for _, c := range []struct {
		cfg  *lora.Config
		text string
	}{{dora, "DoRA"}, {toSave, "modules_to_save"}} {
		a, err := lora.New(m, c.cfg, "v", 1)
		if err != nil {
			t.Fatal(err)
		}
		err = WriteLoRA(filepath.Join(t.TempDir(), "l.gguf"), m, a, FileF16)
		if err == nil || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), "merged") {
			t.Errorf("%s adapter as GGUF LoRA: %v", c.text, err)
		}
		if err := WriteModelWith(context.Background(), filepath.Join(t.TempDir(), "m.gguf"), m, tok, Options{FileType: FileF16, Adapter: a}); err != nil {
			t.Errorf("%s adapter merged into a GGUF model: %v", c.text, err)
		}
	}
	// tiny-base ties its embeddings: a trained copy unties them, which the
	// merged GGUF refuses (the merged HF folder holds it).
	untie := lora.NewConfig(4, 8, "q_proj")
	untie.ModulesToSave = []string{"embed_tokens"}
	a, err := lora.New(m, untie, "u", 1)
	if err != nil {
		t.Fatal(err)
	}
	err = WriteModelWith(context.Background(), filepath.Join(t.TempDir(), "m.gguf"), m, tok, Options{FileType: FileF16, Adapter: a})
	if err == nil || !strings.Contains(err.Error(), "--format merged") {
		t.Errorf("untied copies in a merged GGUF: %v", err)
	}
}
