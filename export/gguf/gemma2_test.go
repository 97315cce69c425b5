package gguf

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// gemma2Tiny is the committed random-weight Gemma 2 (46 layers, local and
// global alternating, window 8, both soft-caps).
var gemma2Tiny = filepath.Join("..", "..", "testdata", "gemma2-tiny")

// TestWriteModelGemma2: the export takes llama.cpp's gemma2 architecture
// and the names and keys src/models/gemma2.cpp reads: Gemma's four norms
// per layer (attn_norm, post_attention_norm, ffn_norm, post_ffw_norm) and
// output_norm stored as 1 + w, no lm_head (llama.cpp reads token_embd),
// both soft-caps, the window and the period of local layers. Nothing is
// permuted (NEOX RoPE).
func TestWriteModelGemma2(t *testing.T) {
	m, f := exportTiny(t, gemma2Tiny, "gemma2")
	for key, want := range map[string]uint64{"gemma2.attention.key_length": 16, "gemma2.attention.head_count_kv": 2,
		"gemma2.attention.sliding_window": 8, "gemma2.attention.sliding_window_pattern": 2, "gemma2.block_count": 46} {
		if got, ok := f.Uint(key); !ok || got != want {
			t.Errorf("%s = %d (%v), want %d", key, got, ok, want)
		}
	}
	for key, want := range map[string]float64{"gemma2.attn_logit_softcapping": 3, "gemma2.final_logit_softcapping": 6, "gemma2.rope.freq_base": 1e4} {
		if got, ok := f.Float(key); !ok || got != want {
			t.Errorf("%s = %g (%v), want %g", key, got, ok, want)
		}
	}
	params := m.Params()
	for hf, v := range params {
		gname, err := TensorNameFor("gemma2", hf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Float32(gname)
		if err != nil {
			t.Fatalf("%s: %v", hf, err)
		}
		want := v.Value.F32()
		if strings.HasSuffix(hf, "norm.weight") {
			want = plusOne(want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s (%s) differs from the model's (1 + w for norms)", gname, hf)
		}
	}
	if n := len(f.Tensors); n != len(params) {
		t.Errorf("%d tensors in the file, the model has %d", n, len(params))
	}
	for hf, want := range map[string]string{
		"model.layers.45.post_attention_layernorm.weight":  "blk.45.post_attention_norm.weight",
		"model.layers.45.pre_feedforward_layernorm.weight": "blk.45.ffn_norm.weight",
		"model.layers.0.post_feedforward_layernorm.weight": "blk.0.post_ffw_norm.weight",
	} {
		if got, err := TensorNameFor("gemma2", hf); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", hf, got, err, want)
		}
	}
}

// TestWriteModelGemma2Refusals: a Gemma 2 that llama.cpp's gemma2 would
// load and compute differently (or not load) is refused, naming what
// differs; a model without local layers is written with period 1 (none).
func TestWriteModelGemma2Refusals(t *testing.T) {
	for want, edit := range map[string]func(*nn.Config){
		"query_pre_attn_scalar":   func(c *nn.Config) { c.QueryPreAttnScalar = 16 },
		"attn_logit_softcapping":  func(c *nn.Config) { c.AttnSoftcap = 0 },
		"final_logit_softcapping": func(c *nn.Config) { c.FinalSoftcap = 0 },
		"tie_word_embeddings":     func(c *nn.Config) { c.TieEmbeddings = false },
		"attention_bias":          func(c *nn.Config) { c.OutputBias = true },
		"layer 3 is full_attention": func(c *nn.Config) {
			c.SlidingLayers = make([]bool, 46)
			c.SlidingLayers[0], c.SlidingLayers[1] = true, true
		},
	} {
		m, err := nn.Load(gemma2Tiny, nn.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		edit(&m.Config)
		_, err = BuildModel(m, nil, Options{FileType: FileF32}, "x")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want a refusal naming it", want, err)
		}
	}
	m, err := nn.Load(gemma2Tiny, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Config.SlidingWindow, m.Config.SlidingLayers = 0, make([]bool, 46)
	b, err := BuildModel(m, nil, Options{FileType: FileF32}, "x")
	if err != nil {
		t.Fatal(err)
	}
	var p any
	for _, kv := range b.Metadata() {
		if kv.Key == "gemma2.attention.sliding_window_pattern" {
			p = kv.Value
		}
	}
	if p != uint32(1) {
		t.Errorf("no local layers: sliding_window_pattern %v, want 1", p)
	}
}
