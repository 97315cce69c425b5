package gguf

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/nn"
)

// qwen3Tiny is the committed random-weight Qwen3 (head_dim 32 ≠ 64/4).
var qwen3Tiny = filepath.Join("..", "..", "testdata", "qwen3-tiny")

// TestWriteModelQwen3: the export takes llama.cpp's qwen3 architecture,
// q_norm / k_norm become blk.N.attn_q_norm / attn_k_norm (F32, head_dim
// long), key_length is head_dim (not hidden/heads), no tensor is permuted
// (qwen3 runs NEOX RoPE) and every tensor reads back equal to the model's.
func TestWriteModelQwen3(t *testing.T) {
	m, f := exportTiny(t, qwen3Tiny, "qwen3")
	for key, want := range map[string]uint64{"qwen3.attention.key_length": 32, "qwen3.attention.value_length": 32, "qwen3.rope.dimension_count": 32,
		"qwen3.attention.head_count": 4, "qwen3.attention.head_count_kv": 2, "qwen3.embedding_length": 64} {
		if got, ok := f.Uint(key); !ok || got != want {
			t.Errorf("%s = %d (%v), want %d", key, got, ok, want)
		}
	}
	if got, _ := f.Float("qwen3.rope.freq_base"); got != 1e6 {
		t.Errorf("rope.freq_base %g, want 1e6", got)
	}
	for _, n := range []string{"blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"} {
		ti, ok := f.Tensor(n)
		if !ok || ti.Type != F32 || !reflect.DeepEqual(ti.Shape(), []int{32}) {
			t.Fatalf("%s: present %v, type %v, shape %v; want F32 [32]", n, ok, ti.Type, ti.Shape())
		}
	}
	if _, ok := f.Tensor("output.weight"); ok {
		t.Error("tied embeddings written as output.weight")
	}
	params := m.Params()
	for hf, v := range params {
		gname, err := TensorName(hf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Float32(gname)
		if err != nil {
			t.Fatalf("%s: %v", hf, err)
		}
		if !reflect.DeepEqual(got, v.Value.F32()) {
			t.Fatalf("%s (%s) differs from the model: qwen3 must not be permuted", gname, hf)
		}
	}
	if n := len(f.Tensors); n != len(params) {
		t.Errorf("%d tensors in the file, the model has %d", n, len(params))
	}
}

// TestWriteModelQwen3Refusals: settings llama.cpp's qwen3 would not compute
// are refused by name instead of written.
func TestWriteModelQwen3Refusals(t *testing.T) {
	base := map[string]any{"model_type": "qwen3", "architectures": []string{"Qwen3ForCausalLM"}, "head_dim": 16}
	for key, extra := range map[string]map[string]any{
		"attention_bias":     {"attention_bias": true},
		"use_sliding_window": {"use_sliding_window": true, "sliding_window": 8, "max_window_layers": 1},
	} {
		cfg := map[string]any{}
		for k, v := range base {
			cfg[k] = v
		}
		for k, v := range extra {
			cfg[k] = v
		}
		m, err := nn.Load(writeRandomModel(t, cfg), nn.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = BuildModel(m, nil, Options{FileType: FileF32}, "x")
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: got %v, want a refusal naming it", key, err)
		}
	}
}

// TestWriteModelQwen2SlidingWindowRefused: llama.cpp's qwen2 has no
// sliding-window attention either, so a Qwen2 that uses it is refused.
func TestWriteModelQwen2SlidingWindowRefused(t *testing.T) {
	cfg := map[string]any{"model_type": "qwen2", "architectures": []string{"Qwen2ForCausalLM"},
		"use_sliding_window": true, "sliding_window": 8, "max_window_layers": 1}
	m, err := nn.Load(writeRandomModel(t, cfg), nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildModel(m, nil, Options{FileType: FileF32}, "x"); err == nil || !strings.Contains(err.Error(), "use_sliding_window") || !strings.Contains(err.Error(), "qwen2") {
		t.Fatalf("got %v, want a refusal naming use_sliding_window and qwen2", err)
	}
}

// exportTiny writes a committed tiny model folder as an F32 GGUF and reads
// it back, checking it took llama.cpp's architecture arch; the file is
// closed when the test ends.
func exportTiny(t *testing.T, folder, arch string) (*nn.Model, *File) {
	t.Helper()
	m, err := nn.Load(folder, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(folder)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), arch+".gguf")
	if err := WriteModel(path, m, tok, "", FileF32); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if a, _ := f.String("general.architecture"); a != arch {
		t.Fatalf("architecture %q, want %s", a, arch)
	}
	return m, f
}
