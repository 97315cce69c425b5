package gguf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/export"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
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

// A model held in bf16 (as `ftune export` loads it) writes the same file
// as the model widened to float32, in every file type: the weights the
// adapter leaves are encoded from their bf16 bits a chunk of rows at a
// time (export.Source.BF16Bits), the others through float32. A chunk
// smaller than the embeddings makes the chunking itself part of the test.
// An infinity in the bf16 embeddings is still refused.
func TestExportOfABF16Model(t *testing.T) {
	m32, tok, _ := loadTiny(t)
	m16, err := nn.Load(tinyBase, nn.LoadOptions{KeepBF16: true})
	if err != nil {
		t.Fatal(err)
	}
	if m16.Embed.Value.DType() != tensor.BF16 {
		t.Fatalf("embeddings loaded as %s, want bf16", m16.Embed.Value.DType())
	}
	// 100 rows of 256 a chunk: the embeddings' 4096 rows end on a short
	// chunk, and every projection spans several.
	defer func(v int) { encodeChunkValues = v }(encodeChunkValues)
	encodeChunkValues = 100 * 256
	dir := t.TempDir()
	for _, ft := range []FileType{FileF32, FileF16, FileBF16, FileQ8_0, FileQ4_0} {
		var files [2][]byte
		for i, m := range []*nn.Model{m32, m16} {
			a := randomAdapter(t, m, lora.NewConfig(4, 8, "q_proj", "v_proj"))
			// The same file name: general.name defaults to it.
			path := filepath.Join(dir, fmt.Sprint(ft, i), "model.gguf")
			if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := WriteModelWith(context.Background(), path, m, tok, Options{FileType: ft, Adapter: a}); err != nil {
				t.Fatal(err)
			}
			if files[i], err = os.ReadFile(path); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(files[0], files[1]) {
			t.Errorf("file type %v: the GGUF of the bf16-held model differs from the float32-held model's", ft)
		}
	}

	tensor.U16Data(m16.Embed.Value)[5] = 0xff80 // -Inf
	a := randomAdapter(t, m16, lora.NewConfig(4, 8, "q_proj", "v_proj"))
	err = WriteModelWith(context.Background(), filepath.Join(dir, "inf.gguf"), m16, tok, Options{FileType: FileQ4_0, Adapter: a})
	if !errors.Is(err, export.ErrNonFinite) || !strings.Contains(err.Error(), "model.embed_tokens.weight") {
		t.Errorf("-Inf in the bf16 embeddings: error %v, want ErrNonFinite naming model.embed_tokens.weight", err)
	}
}
