package gguf

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/lora"
)

// TestWriteLoRAStopsWhenCancelled: a GGUF LoRA cancelled between two
// tensors stops there, with an error wrapping the context's that names
// the next tensor, and leaves neither the file nor a temporary; an earlier
// file at the path stays as it was. Uncancelled, it writes what WriteLoRA
// writes.
func TestWriteLoRAStopsWhenCancelled(t *testing.T) {
	m, _, _ := loadTiny(t)
	a := randomAdapter(t, m, lora.NewConfig(4, 8, "q_proj", "v_proj"))
	dir := t.TempDir()
	path := filepath.Join(dir, "adapter.gguf")
	n := 3
	err := WriteLoRAContext(testutil.NewCancelAfter(n), path, m, a, FileF16)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped before model.layers.") {
		t.Fatalf("cancelled after 3 tensors: err = %v; want context.Canceled naming the next tensor", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a cancelled write left %d file(s) in %s", len(ents), dir)
	}

	if err := WriteLoRAContext(context.Background(), path, m, a, FileF16); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "adapter.gguf")
	if err := WriteLoRA(plain, m, a, FileF16); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(plain); !bytes.Equal(b, before) {
		t.Fatal("WriteLoRAContext and WriteLoRA wrote different files")
	}
	a.Layers["model.layers.0.self_attn.q_proj"].B.Value.Fill(0.5) // another write would differ
	n = 3
	if err := WriteLoRAContext(testutil.NewCancelAfter(n), path, m, a, FileF16); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write over an earlier file: err = %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(after, before) {
		t.Fatalf("a cancelled write changed the earlier file at %s (%v)", path, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("a cancelled write over an earlier file left %d file(s) in %s, want 1", len(ents), dir)
	}
}
