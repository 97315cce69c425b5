package gguf

import (
	"context"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// TestWriteModelGraniteScalars: the four scalars reach the keys llama.cpp's
// granite reads, 1 where config.json is silent (llama.cpp would read a
// missing attention.scale as 1/√head_dim, not Granite's default 1); Q/K
// are permuted as for Llama; a window, which that graph does not compute,
// is refused.
func TestWriteModelGraniteScalars(t *testing.T) {
	base := map[string]any{"model_type": "granite", "architectures": []string{"GraniteForCausalLM"}, "attention_bias": true}
	build := func(extra map[string]any, edit func(*nn.Model)) (*Builder, error) {
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
		if edit != nil {
			edit(m)
		}
		return BuildModel(context.Background(), m, nil, Options{FileType: FileF32}, "x")
	}
	b, err := build(map[string]any{"embedding_multiplier": 12.0, "attention_multiplier": 0.015625, "residual_multiplier": 0.22, "logits_scaling": 8.0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float32{"granite.embedding_scale": 12, "granite.attention.scale": 0.015625, "granite.residual_scale": 0.22, "granite.logit_scale": 8}
	for k, v := range want {
		if got := metadataValue(b, k); got != v {
			t.Errorf("%s = %v, want float32 %v", k, got, v)
		}
	}
	if arch := metadataValue(b, "general.architecture"); arch != "granite" {
		t.Errorf("architecture %v, want granite", arch)
	}
	if _, permute, _ := Architecture("granite"); !permute {
		t.Error("granite's Q/K (and their biases) are not permuted to llama.cpp's rotary layout")
	}
	b, err = build(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"granite.embedding_scale", "granite.attention.scale", "granite.residual_scale", "granite.logit_scale"} {
		if got := metadataValue(b, k); got != float32(1) {
			t.Errorf("defaults: %s = %v, want float32 1", k, got)
		}
	}
	_, err = build(nil, func(m *nn.Model) {
		m.Config.SlidingWindow = 8
		for i := range m.Config.SlidingLayers {
			m.Config.SlidingLayers[i] = true
		}
	})
	if err == nil || !strings.Contains(err.Error(), "sliding_window 8") {
		t.Errorf("a window: %v, want a refusal naming sliding_window", err)
	}
}
