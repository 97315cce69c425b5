package parity

import (
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// TestQwen3LlamaCpp compares ftune's float32 logits on testdata/qwen3-tiny
// with llama.cpp's own qwen3 implementation on ftune's F32 GGUF export of
// the same weights (llamacpp_logits.safetensors; how it was made is in the
// README there). transformers was not at hand for Qwen3, so this is the
// family's reference for the forward pass; gradients follow from autograd
// (checked against transformers on llama and qwen2, and by finite
// differences through the q/k norms in package nn).
//
// Tolerance: tolActivations (1e-4 relative Frobenius), the one the
// transformers fixtures use. Both sides compute in float32 (llama.cpp
// without flash attention, whose CPU path rounds to f16, and with a float32
// KV cache); only summation orders differ, which measured 5.7e-7 here.
// A wrong q/k norm moves the logits by more than 1e-2 (checked below, so
// the golden file is known to see that path).
func TestQwen3LlamaCpp(t *testing.T) {
	checkLlamaCpp(t, qwen3Tiny(t), "qwen3", tolActivations, map[string]func(*nn.Model){
		// The norm weights are far from 1, so running without them (all
		// ones) must miss the golden logits by far.
		"q_norm/k_norm set to 1": func(m *nn.Model) {
			for _, b := range m.Layers {
				for _, w := range []*autograd.Var{b.QNorm, b.KNorm} {
					w.Value.CopyFrom(tensor.Full(w.Value.Backend(), w.Value.DType(), 1, w.Value.Shape()...))
				}
			}
		},
	})
}
