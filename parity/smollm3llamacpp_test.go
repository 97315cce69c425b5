package parity

import (
	"testing"

	"github.com/ftune/ftune/nn"
)

// TestSmolLM3LlamaCpp compares ftune's float32 logits on
// testdata/smollm3-tiny (SmolLM3-3B's layout: every fourth layer a NoPE
// layer, layers 3 and 7 of 8; GQA 4/2; tied; RoPE base 5e6) with llama.cpp's
// smollm3 (src/models/smollm3.cpp) on ftune's F32 GGUF export of the same
// weights (llamacpp_logits.safetensors; README there). The transformers
// fixture testdata/fixtures/smollm3-tiny checks the forward and backward
// against SmolLM3ForCausalLM on another NoPE pattern; this checks that the
// GGUF export computes the same in llama.cpp.
//
// Tolerance: tolActivations (1e-4 relative Frobenius), as for Qwen3: both
// sides compute in float32 (no flash attention, float32 KV cache); only
// summation orders and float32 RoPE angles differ. Negative controls, each
// of which must miss prompt 0's golden logits by more than 1e-2: the NoPE
// layers rotated, and the NoPE layer moved one layer down (NoPE on layers
// 2 and 6).
func TestSmolLM3LlamaCpp(t *testing.T) {
	setNoRope := func(layers ...int) func(*nn.Model) {
		return func(m *nn.Model) {
			for _, b := range m.Layers {
				b.NoRope = false
			}
			for _, l := range layers {
				m.Layers[l].NoRope = true
			}
		}
	}
	checkLlamaCpp(t, smollm3Tiny(t), "smollm3", tolActivations, map[string]func(*nn.Model){
		"NoPE layers rotated":    setNoRope(),
		"NoPE on layers 2 and 6": setNoRope(2, 6),
	})
}
