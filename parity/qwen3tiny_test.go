package parity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// qwen3Tiny is the committed random-weight Qwen3 folder (README there).
const qwen3Tiny = "../testdata/qwen3-tiny"

// qwen3TinySeed and the sizes below define its weights; config.json there
// must agree (TestQwen3TinyWeightsReproduce checks the bytes).
const qwen3TinySeed = 20261205

// qwen3TinyShapes lists every tensor of testdata/qwen3-tiny/config.json
// (hidden 64, intermediate 128, 2 layers, 4 heads, 2 KV heads, head_dim 32
// so that heads·head_dim = 128 ≠ hidden, vocab 4096, tied embeddings, no
// bias), spelled out rather than derived from package nn so that the
// fixture does not follow a change in ftune's own shape logic.
func qwen3TinyShapes() map[string][]int {
	const H, I, V, L, NH, NKV, D = 64, 128, 4096, 2, 4, 2, 32
	s := map[string][]int{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}}
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		s[p+"input_layernorm.weight"] = []int{H}
		s[p+"post_attention_layernorm.weight"] = []int{H}
		s[p+"self_attn.q_proj.weight"] = []int{NH * D, H}
		s[p+"self_attn.k_proj.weight"] = []int{NKV * D, H}
		s[p+"self_attn.v_proj.weight"] = []int{NKV * D, H}
		s[p+"self_attn.o_proj.weight"] = []int{H, NH * D}
		s[p+"self_attn.q_norm.weight"] = []int{D}
		s[p+"self_attn.k_norm.weight"] = []int{D}
		s[p+"mlp.gate_proj.weight"] = []int{I, H}
		s[p+"mlp.up_proj.weight"] = []int{I, H}
		s[p+"mlp.down_proj.weight"] = []int{H, I}
	}
	return s
}

// qwen3TinyWeights draws the weights: tensors in sorted name order from one
// PCG stream; norm weights 1 + 0.2·N(0,1) (far enough from 1 that a
// missing or misplaced q_norm / k_norm changes the logits), every matrix
// N(0,1)/√fan_in (the embedding 0.5·N(0,1)), so activations stay O(1).
func qwen3TinyWeights() []safetensors.Tensor {
	return testutil.SeededF32Tensors(qwen3TinyShapes(), rand.New(rand.NewPCG(qwen3TinySeed, 13)), func(name string, shape []int, rng *rand.Rand) float64 {
		scale := 0.5
		if len(shape) == 2 && name != "model.embed_tokens.weight" {
			scale = 1 / math.Sqrt(float64(shape[1]))
		}
		v := scale * rng.NormFloat64()
		if strings.HasSuffix(name, "norm.weight") {
			v = 1 + 0.2*rng.NormFloat64() // the draw above is consumed too, as the fixture was made
		}
		return v
	})
}

// TestQwen3TinyWeightsReproduce: the committed model.safetensors is what
// the seed gives (its provenance), byte for byte. FTUNE_WRITE_QWEN3_TINY=1
// rewrites it.
func TestQwen3TinyWeightsReproduce(t *testing.T) {
	checkTinyWeights(t, qwen3Tiny, qwen3TinyWeights, "FTUNE_WRITE_QWEN3_TINY")
}

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
	checkLlamaCpp(t, qwen3Tiny, "qwen3", tolActivations, map[string]func(*nn.Model){
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
