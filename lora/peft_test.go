package lora

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
)

func TestInMemoryName(t *testing.T) {
	cases := []struct{ key, name, adapter string }{
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.q_proj.lora_A.weight", ""},
		{"base_model.model.model.layers.0.mlp.down_proj.lora_B.default.weight", "model.layers.0.mlp.down_proj.lora_B.weight", "default"},
		{"model.layers.3.self_attn.v_proj.lora_A.weight", "model.layers.3.self_attn.v_proj.lora_A.weight", ""},
		{"base_model.model.model.embed_tokens.lora_embedding_A.default", "model.embed_tokens.lora_embedding_A", "default"},
		{"base_model.model.model.embed_tokens.lora_embedding_B", "model.embed_tokens.lora_embedding_B", ""},
		{"base_model.model.lm_head.modules_to_save.default.weight", "lm_head.weight", "default"},
		{"base_model.model.lm_head.weight", "lm_head.weight", ""},
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_B.math.bias", "model.layers.0.self_attn.q_proj.lora_B.bias", "math"},
		// DoRA: saved without ".weight"; a live DoraLinearLayer's weight;
		// PEFT < 0.12's ParameterDict.
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", "model.layers.0.self_attn.q_proj.lora_magnitude_vector", ""},
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.default.weight", "model.layers.0.self_attn.q_proj.lora_magnitude_vector", "default"},
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.default", "model.layers.0.self_attn.q_proj.lora_magnitude_vector", "default"},
		{"base_model.model.model.embed_tokens.modules_to_save.default.weight", "model.embed_tokens.weight", "default"},
	}
	for _, c := range cases {
		name, adapter := InMemoryName(c.key)
		if name != c.name || adapter != c.adapter {
			t.Errorf("InMemoryName(%q) = %q, %q; want %q, %q", c.key, name, adapter, c.name, c.adapter)
		}
	}
	n := WeightName("model.layers.1.mlp.up_proj", PartB)
	if k := SavedKey(n); k != "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight" {
		t.Errorf("SavedKey = %q", k)
	}
	if back, _ := InMemoryName(SavedKey(n)); back != n {
		t.Errorf("round trip %q -> %q", n, back)
	}
	if m, p, ok := SplitWeightName(n); !ok || m != "model.layers.1.mlp.up_proj" || p != PartB {
		t.Errorf("SplitWeightName(%q) = %q %q %v", n, m, p, ok)
	}
	if _, _, ok := SplitWeightName("lm_head.weight"); ok {
		t.Error("SplitWeightName accepted a non-LoRA name")
	}
}

// fixtureLinears gives the linear layers of the two fixture models from
// their config.json values (hidden 64, 2 layers, 4 heads / 2 KV heads of 16;
// intermediate 160 for llama-tiny, 176 for qwen2-tiny), with hidden
// overriding the hidden size to describe "another base".
func fixtureLinears(intermediate, hidden int) []Linear {
	kv := 2 * 16
	var out []Linear
	for _, name := range llamaLinears(2) {
		leaf := name[strings.LastIndexByte(name, '.')+1:]
		l := Linear{Name: name}
		switch leaf {
		case "q_proj", "o_proj":
			l.Out, l.In = hidden, hidden
		case "k_proj", "v_proj":
			l.Out, l.In = kv, hidden
		case "gate_proj", "up_proj":
			l.Out, l.In = intermediate, hidden
		case "down_proj":
			l.Out, l.In = hidden, intermediate
		case "lm_head":
			l.Out, l.In = 320, hidden
		}
		out = append(out, l)
	}
	return out
}

// TestLoadFixtureAdapter reads the PEFT adapters and the gradient dump of
// the fixtures: the names map to the same in-memory names (the dump carries
// ".default"), the shapes fit the models, and every tensor is non-zero.
func TestLoadFixtureAdapter(t *testing.T) {
	for i, dir := range fixtureDirs {
		inter := []int{160, 176}[i]
		c, w, err := LoadAdapter(filepath.Join(dir, "adapter_init"))
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != 28 {
			t.Errorf("%s: %d tensors, want 2 layers x 7 modules x 2", dir, len(w))
		}
		if err := CheckWeights(c, w, fixtureLinears(inter, 64), "lm_head"); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
		a := w["model.layers.1.mlp.down_proj.lora_A.weight"]
		if !slices.Equal(a.Shape, []int{4, inter}) || len(a.Data) != 4*inter {
			t.Errorf("%s: down_proj lora_A shape %v", dir, a.Shape)
		}
		grads, err := ReadWeights(filepath.Join(dir, "grads_lora.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(grads)), slices.Sorted(maps.Keys(w))) {
			t.Errorf("%s: gradient names %v differ from adapter names", dir, slices.Sorted(maps.Keys(grads)))
		}
		for name, g := range grads {
			if !slices.Equal(g.Shape, w[name].Shape) {
				t.Errorf("%s: grad %s shape %v, weight %v", dir, name, g.Shape, w[name].Shape)
			}
			if maxAbs(g.Data) == 0 || maxAbs(w[name].Data) == 0 {
				t.Errorf("%s: %s is all zero (fixture has lora_B = 0.05*randn, every gradient non-zero)", dir, name)
			}
		}
	}
}

func maxAbs(x []float32) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// TestSaveAdapterMatchesPEFT writes the fixture adapter back and compares
// with PEFT's files byte for byte: same config text, same safetensors
// layout (key names, dtype, order, metadata).
func TestSaveAdapterMatchesPEFT(t *testing.T) {
	src := filepath.Join(fixtureDirs[0], "adapter_after")
	c, w, err := LoadAdapter(src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "adapter")
	if err := SaveAdapter(out, c, w); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ConfigFile, WeightsFile} {
		want, _ := os.ReadFile(filepath.Join(src, f))
		got, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from PEFT's (%d vs %d bytes)", f, len(got), len(want))
		}
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 2 {
		t.Errorf("adapter folder holds %d entries, want exactly the two files (no temporaries)", len(entries))
	}
}

func TestCheckWeightsErrors(t *testing.T) {
	c, w, err := LoadAdapter(filepath.Join(fixtureDirs[0], "adapter_init"))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckWeights(c, w, fixtureLinears(160, 96), "lm_head")
	if !errors.Is(err, ErrAdapterMismatch) || !strings.Contains(err.Error(), "another base") {
		t.Errorf("other base: %v", err)
	}
	less := maps.Clone(w)
	delete(less, "model.layers.0.self_attn.q_proj.lora_B.weight")
	less["model.layers.0.self_attn.q_proj.lora_C.weight"] = Tensor{Shape: []int{1}, Data: []float32{1}}
	err = CheckWeights(c, less, fixtureLinears(160, 64), "lm_head")
	if !errors.Is(err, ErrAdapterMismatch) || !strings.Contains(err.Error(), "missing: model.layers.0.self_attn.q_proj.lora_B.weight") ||
		!strings.Contains(err.Error(), "unexpected: model.layers.0.self_attn.q_proj.lora_C.weight") {
		t.Errorf("missing/unexpected: %v", err)
	}
	// modules_to_save copies are expected extras.
	c.ModulesToSave = []string{"lm_head"}
	more := maps.Clone(w)
	more["lm_head.weight"] = Tensor{Shape: []int{320, 64}, Data: make([]float32, 320*64)}
	if err := CheckWeights(c, more, fixtureLinears(160, 64), "lm_head"); err != nil {
		t.Errorf("modules_to_save weight rejected: %v", err)
	}
}

func TestReadWeightsErrors(t *testing.T) {
	dir := t.TempDir()
	f32 := func(name string) safetensors.Tensor {
		return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: []int{1}, Data: make([]byte, 4)}
	}
	dup := filepath.Join(dir, "dup.safetensors")
	if err := safetensors.Write(dup, []safetensors.Tensor{
		f32("base_model.model.x.lora_A.default.weight"), f32("base_model.model.x.lora_A.other.weight"),
	}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadWeights(dup); err == nil || !strings.Contains(err.Error(), "more than one adapter") {
		t.Errorf("two adapters: %v", err)
	}
	i8 := filepath.Join(dir, "i8.safetensors")
	safetensors.Write(i8, []safetensors.Tensor{{Name: "x.lora_A.weight", DType: safetensors.I8, Shape: []int{1}, Data: []byte{1}}}, nil)
	if _, err := ReadWeights(i8); err == nil || !strings.Contains(err.Error(), "x.lora_A.weight") {
		t.Errorf("int8 tensor: %v", err)
	}
	if _, err := ReadWeights(filepath.Join(dir, "absent.safetensors")); err == nil {
		t.Error("missing file accepted")
	}
	// An adapter saved as a pickle (older PEFT): the error says so.
	if err := os.WriteFile(filepath.Join(dir, "adapter_model.bin"), []byte("PK"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadWeights(filepath.Join(dir, "adapter_model.safetensors")); err == nil || !strings.Contains(err.Error(), "holds adapter_model.bin: PyTorch pickle") {
		t.Errorf("pickled adapter: %v; want the error to name adapter_model.bin", err)
	}
	if err := WriteWeights(filepath.Join(dir, "bad.safetensors"), map[string]Tensor{"a": {Shape: []int{2}, Data: []float32{1}}}); err == nil {
		t.Error("shape/data mismatch written")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.safetensors")); err == nil {
		t.Error("a failed write left a file")
	}
}

// TestReadWeightsDTypes: BF16 and F16 adapters are widened exactly.
func TestReadWeightsDTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.safetensors")
	// bf16 1.5 = 0x3fc0; f16: 1 = 0x3c00, -2 = 0xc000, 65504 = 0x7bff,
	// 2^-24 = 0x0001 (smallest subnormal), +Inf = 0x7c00.
	bf := []byte{0xc0, 0x3f}
	f16 := []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c}
	if err := safetensors.Write(path, []safetensors.Tensor{
		{Name: "base_model.model.m.lora_A.weight", DType: safetensors.BF16, Shape: []int{1, 1}, Data: bf},
		{Name: "base_model.model.m.lora_B.weight", DType: safetensors.F16, Shape: []int{5, 1}, Data: f16},
	}, nil); err != nil {
		t.Fatal(err)
	}
	w, err := ReadWeights(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := w["m.lora_A.weight"].Data; a[0] != 1.5 {
		t.Errorf("bf16: %v", a)
	}
	want := []float32{1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Inf(1))}
	if b := w["m.lora_B.weight"].Data; !slices.Equal(b, want) {
		t.Errorf("f16: %v, want %v", b, want)
	}
}
