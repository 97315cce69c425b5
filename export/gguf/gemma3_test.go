package gguf

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// gemma3Tiny is the committed random-weight Gemma 3 (4 layers, local and
// global alternating, window 8).
var gemma3Tiny = filepath.Join("..", "..", "testdata", "gemma3-tiny")

// TestWriteModelGemma3: the export takes llama.cpp's gemma3 architecture
// and the names and keys src/models/gemma3.cpp reads: the four norms of a
// layer as attn_norm, post_attention_norm, ffn_norm and post_ffw_norm;
// every norm weight (the q/k norms and output_norm too) stored as 1 + w,
// as the converter's norm_shift does; the window, the period of local
// layers and the local RoPE base; the global linear scaling. Nothing is
// permuted (NEOX RoPE).
func TestWriteModelGemma3(t *testing.T) {
	m, f := exportTiny(t, gemma3Tiny, "gemma3")
	for key, want := range map[string]uint64{"gemma3.attention.key_length": 32, "gemma3.attention.head_count_kv": 1,
		"gemma3.attention.sliding_window": 8, "gemma3.attention.sliding_window_pattern": 2, "gemma3.block_count": 4} {
		if got, ok := f.Uint(key); !ok || got != want {
			t.Errorf("%s = %d (%v), want %d", key, got, ok, want)
		}
	}
	for key, want := range map[string]float64{"gemma3.rope.freq_base": 1e6, "gemma3.rope.freq_base_swa": 1e4, "gemma3.rope.scaling.factor": 2} {
		if got, ok := f.Float(key); !ok || got != want {
			t.Errorf("%s = %g (%v), want %g", key, got, ok, want)
		}
	}
	if s, _ := f.String("gemma3.rope.scaling.type"); s != "linear" {
		t.Errorf("rope.scaling.type %q, want linear", s)
	}
	params := m.Params()
	for hf, v := range params {
		gname, err := TensorNameFor("gemma3", hf)
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
		"model.layers.3.input_layernorm.weight":            "blk.3.attn_norm.weight",
		"model.layers.3.post_attention_layernorm.weight":   "blk.3.post_attention_norm.weight",
		"model.layers.3.pre_feedforward_layernorm.weight":  "blk.3.ffn_norm.weight",
		"model.layers.3.post_feedforward_layernorm.weight": "blk.3.post_ffw_norm.weight",
		"model.layers.3.self_attn.q_norm.weight":           "blk.3.attn_q_norm.weight",
	} {
		if got, err := TensorNameFor("gemma3", hf); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", hf, got, err, want)
		}
	}
	if got, _ := TensorName("model.layers.0.post_attention_layernorm.weight"); got != "blk.0.ffn_norm.weight" {
		t.Errorf("llama's post_attention_layernorm became %q", got)
	}
}

// TestWriteModelGemma3Refusals: a Gemma 3 that llama.cpp's gemma3 would
// load and compute differently is refused, naming what differs.
func TestWriteModelGemma3Refusals(t *testing.T) {
	for want, edit := range map[string]func(*nn.Config){
		"query_pre_attn_scalar": func(c *nn.Config) { c.QueryPreAttnScalar = 20 },
		"attention_bias":        func(c *nn.Config) { c.OutputBias = true },
		"layer 2":               func(c *nn.Config) { c.SlidingLayers = []bool{true, false, false, true} },
	} {
		m, err := nn.Load(gemma3Tiny, nn.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		edit(&m.Config)
		_, err = BuildModel(m, nil, Options{FileType: FileF32}, "x")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want a refusal naming it", want, err)
		}
	}
}
