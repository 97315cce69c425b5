package gguf

import (
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
)

var (
	phi3Tiny     = filepath.Join("..", "..", "testdata", "phi3-tiny")
	phi4MiniTiny = filepath.Join("..", "..", "testdata", "phi4mini-tiny")
)

// TestWriteModelPhi3: the export takes llama.cpp's phi3 architecture and
// what Phi3MiniModel writes: the fused qkv_proj and gate_up_proj as
// attn_qkv and ffn_up, unpermuted (NEOX RoPE) and unsplit; the LongRoPE
// factors as rope_factors_long/short (F32); the pretraining length, the
// attention factor and the window; rope.dimension_count the rotated part
// of a head (12 of 16 for phi4mini-tiny's partial rotary 0.75); no
// output.weight when tied.
func TestWriteModelPhi3(t *testing.T) {
	for _, tc := range []struct {
		folder         string
		rot, orig, swa uint64
		attn           float64
		tied           bool
	}{
		{phi3Tiny, 16, 32, 262144, math.Sqrt(1 + math.Log(8)/math.Log(32)), false},
		{phi4MiniTiny, 12, 512, 0, math.Sqrt(1 + math.Log(4)/math.Log(512)), true},
	} {
		m, f := exportTiny(t, tc.folder, "phi3")
		for key, want := range map[string]uint64{"phi3.rope.dimension_count": tc.rot, "phi3.rope.scaling.original_context_length": tc.orig,
			"phi3.attention.sliding_window": tc.swa, "phi3.attention.head_count_kv": uint64(m.Config.NumKVHeads)} {
			if got, ok := f.Uint(key); !ok || got != want {
				t.Errorf("%s: %s = %d (%v), want %d", tc.folder, key, got, ok, want)
			}
		}
		if got, ok := f.Float("phi3.rope.scaling.attn_factor"); !ok || math.Abs(got-tc.attn) > 1e-6 {
			t.Errorf("%s: attn_factor %v (%v), want %v", tc.folder, got, ok, tc.attn)
		}
		for name, want := range map[string][]float64{"rope_factors_long.weight": m.Config.Rope.LongFactor, "rope_factors_short.weight": m.Config.Rope.ShortFactor} {
			got, err := f.Float32(name)
			if err != nil || len(got) != int(tc.rot/2) {
				t.Fatalf("%s: %s: %v, %d values", tc.folder, name, err, len(got))
			}
			for i := range got {
				if float64(got[i]) != float64(float32(want[i])) {
					t.Fatalf("%s: %s[%d] = %v, want %v", tc.folder, name, i, got[i], want[i])
				}
			}
		}
		params := m.Params()
		for hf, v := range params {
			gname, err := TensorNameFor("phi3", hf)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Float32(gname)
			if err != nil {
				t.Fatalf("%s: %v", hf, err)
			}
			if !reflect.DeepEqual(got, v.Value.F32()) {
				t.Fatalf("%s (%s) differs from the model's", gname, hf)
			}
		}
		if n := len(f.Tensors); n != len(params)+2 { // + the two factor tensors
			t.Errorf("%s: %d tensors in the file, the model has %d (+2 factor lists)", tc.folder, n, len(params))
		}
		if _, err := f.Float32("output.weight"); (err == nil) == tc.tied {
			t.Errorf("%s: output.weight present %v with tie_word_embeddings %v", tc.folder, err == nil, tc.tied)
		}
	}
	for hf, want := range map[string]string{
		"model.layers.1.self_attn.qkv_proj.weight": "blk.1.attn_qkv.weight",
		"model.layers.1.mlp.gate_up_proj.weight":   "blk.1.ffn_up.weight",
		"model.layers.1.self_attn.o_proj.weight":   "blk.1.attn_output.weight",
	} {
		if got, err := TensorNameFor("phi3", hf); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", hf, got, err, want)
		}
	}
}

// TestWriteLoRAPhi3: a GGUF adapter on the fused modules names them as the
// model file does, attn_qkv and ffn_up, with lora_b unpermuted.
func TestWriteLoRAPhi3(t *testing.T) {
	m, err := nn.Load(phi3Tiny, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := randomAdapter(t, m, lora.NewConfig(4, 8, "qkv_proj", "gate_up_proj"))
	b, err := BuildLoRA(m, a, FileF32, "x")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.gguf")
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Float32("blk.0.attn_qkv.weight.lora_b")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a.Layers["model.layers.0.self_attn.qkv_proj"].B.Value.F32()) {
		t.Fatal("attn_qkv lora_b is not the adapter's B as it is")
	}
	if _, err := f.Float32("blk.1.ffn_up.weight.lora_a"); err != nil {
		t.Fatal(err)
	}
}

// TestWriteModelPhi3Refusals: a Phi-3 that llama.cpp's phi3 would not load
// (heads·head_dim ≠ hidden) is refused, and longrope is refused for the
// architectures that have no factor tensors.
func TestWriteModelPhi3Refusals(t *testing.T) {
	m, err := nn.Load(phi3Tiny, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Config.HeadDim = 32
	if _, err := BuildModel(m, nil, Options{FileType: FileF32}, "x"); err == nil || !strings.Contains(err.Error(), "≠ hidden_size 64") {
		t.Errorf("head_dim 32 × 4 heads on hidden 64: %v", err)
	}
	c := m.Config
	c.HeadDim = 16
	if err := setHyperparameters(NewBuilder("llama"), "llama", c); err == nil || !strings.Contains(err.Error(), "longrope") {
		t.Errorf("longrope on llama: %v", err)
	}
}

// TestPhi3Notes: the export tells what llama.cpp computes differently for
// Phi-3: its choice of LongRoPE factors, and a sliding window shorter than
// the context (Phi-3-mini-4k's 2047), which llama.cpp disables.
func TestPhi3Notes(t *testing.T) {
	m, err := nn.Load(phi3Tiny, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	notes := Notes(c)
	if len(notes) != 1 || !strings.Contains(notes[0], "long factors for every token when its context (n_ctx) exceeds 32") {
		t.Fatalf("phi3-tiny (window 262144 > 256 positions): %q", notes)
	}
	c.SlidingWindow, c.Rope.Type = 16, "default"
	if notes := Notes(c); len(notes) != 1 || !strings.Contains(notes[0], "disables Phi-3's sliding window") {
		t.Fatalf("window 16 of 256: %q", notes)
	}
	if notes := Notes(nn.Config{ModelType: "llama", SlidingWindow: 16, MaxPositions: 256}); notes != nil {
		t.Fatalf("llama: %q", notes)
	}
}
