package gguf

import (
	"context"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// TestWriteModelSmolLM3Refusals: a SmolLM3 that llama.cpp's smollm3 would
// compute differently (NoPE layers other than every fourth, a window, a
// rope_freqs scaling) or not load (biases) is refused by name; the
// released pattern is written as architecture smollm3.
func TestWriteModelSmolLM3Refusals(t *testing.T) {
	base := map[string]any{"model_type": "smollm3", "architectures": []string{"SmolLM3ForCausalLM"}, "num_hidden_layers": 8}
	for _, tc := range []struct {
		name  string
		extra map[string]any
		want  string // "" = written
	}{
		{"default pattern", nil, ""},
		{"released pattern, explicit", map[string]any{"no_rope_layers": []int{1, 1, 1, 0, 1, 1, 1, 0}}, ""},
		{"NoPE on layer 1", map[string]any{"no_rope_layers": []int{1, 0, 1, 1, 1, 1, 1, 0}}, "layer 1 is a NoPE layer"},
		{"every layer rotates", map[string]any{"no_rope_layers": []int{1, 1, 1, 1, 1, 1, 1, 1}}, "layer 3 is a RoPE layer"},
		{"interval 2", map[string]any{"no_rope_layer_interval": 2}, "layer 1 is a NoPE layer"},
		{"attention bias", map[string]any{"attention_bias": true}, "attention_bias"},
		{"sliding window", map[string]any{"use_sliding_window": true, "sliding_window": 8}, "use_sliding_window"},
		{"llama3 rope", map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}, "rope_type llama3"},
	} {
		cfg := map[string]any{}
		for k, v := range base {
			cfg[k] = v
		}
		for k, v := range tc.extra {
			cfg[k] = v
		}
		m, err := nn.Load(writeRandomModel(t, cfg), nn.LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, err := BuildModel(context.Background(), m, nil, Options{FileType: FileF32}, "x")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "":
			if arch := metadataValue(b, "general.architecture"); arch != "smollm3" {
				t.Errorf("%s: architecture %v, want smollm3", tc.name, arch)
			}
		case err == nil || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: got %v, want a refusal containing %q", tc.name, err, tc.want)
		}
	}
}

// metadataValue is the value of key in b's metadata (nil when absent).
func metadataValue(b *Builder, key string) any {
	for _, kv := range b.Metadata() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}
