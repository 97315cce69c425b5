package parity

import (
	"testing"

	"github.com/ftune/ftune/nn"
)

// TestGraniteLlamaCpp compares ftune's float32 logits on
// testdata/granite-tiny (Granite's four scalars: embedding_multiplier 4,
// attention_multiplier 1/16, residual_multiplier 0.5, logits_scaling 2;
// every bias Granite can have; GQA 4/2; tied) with llama.cpp's granite
// (src/models/granite.cpp) on ftune's F32 GGUF export of the same weights
// (llamacpp_logits.safetensors; README there). The transformers fixture
// testdata/fixtures/granite-tiny checks the forward and backward against
// GraniteForCausalLM itself; this checks that the GGUF export carries the
// scalars and biases llama.cpp computes with.
//
// Tolerance: tolActivations (1e-4 relative Frobenius), as for Qwen3: both
// sides compute in float32 (no flash attention, float32 KV cache); only
// summation orders and float32 RoPE angles differ. Negative controls, each
// of which must miss prompt 0's golden logits by more than 1e-2: each
// scalar put back to Llama's (the attention scale to 1/√head_dim, the
// others to 1), and the q/k biases dropped (they go through the Q/K
// permutation).
func TestGraniteLlamaCpp(t *testing.T) {
	cfg := func(edit func(*nn.Config)) func(*nn.Model) {
		return func(m *nn.Model) { edit(&m.Config) }
	}
	checkLlamaCpp(t, graniteTiny(t), "granite", tolActivations, map[string]func(*nn.Model){
		"embedding_multiplier 1":      cfg(func(c *nn.Config) { c.EmbedMultiplier = 0 }),
		"attention scale 1/√head_dim": cfg(func(c *nn.Config) { c.AttnScale = 0 }),
		"residual_multiplier 1":       cfg(func(c *nn.Config) { c.ResidualScale = 0 }),
		"logits_scaling 1":            cfg(func(c *nn.Config) { c.LogitsDivisor = 0 }),
		"no q/k biases": func(m *nn.Model) {
			for _, b := range m.Layers {
				b.Attn.Q.Bias, b.Attn.K.Bias = nil, nil
			}
		},
	})
}
