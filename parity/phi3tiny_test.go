package parity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
)

// phi3Tiny and phi4MiniTiny are the committed random-weight Phi-3 folders
// (READMEs there): Phi-3.5-mini's layout (LongRoPE, GQA, untied) and
// Phi-4-mini's (LongRoPE, partial rotary 0.75, tied embeddings).
const (
	phi3Tiny     = "../testdata/phi3-tiny"
	phi4MiniTiny = "../testdata/phi4mini-tiny"
)

// The seeds and the sizes below define their weights; config.json there
// must agree (the Reproduce tests check the bytes).
const (
	phi3TinySeed     = 20261207
	phi4MiniTinySeed = 20261208
)

// phi3Shapes lists every tensor of a Phi-3 folder, spelled out rather than
// derived from package nn so that the fixture does not follow a change in
// ftune's own shape logic: the fused self_attn.qkv_proj [(heads + 2·kv)·d,
// hidden] and mlp.gate_up_proj [2·intermediate, hidden], no bias, no
// lm_head when tied.
func phi3Shapes(H, I, V, L, NH, NKV, D int, tied bool) map[string][]int {
	s := map[string][]int{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}}
	if !tied {
		s["lm_head.weight"] = []int{V, H}
	}
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		s[p+"input_layernorm.weight"] = []int{H}
		s[p+"post_attention_layernorm.weight"] = []int{H}
		s[p+"self_attn.qkv_proj.weight"] = []int{(NH + 2*NKV) * D, H}
		s[p+"self_attn.o_proj.weight"] = []int{H, NH * D}
		s[p+"mlp.gate_up_proj.weight"] = []int{2 * I, H}
		s[p+"mlp.down_proj.weight"] = []int{H, I}
	}
	return s
}

// phi3TinyWeights draws a folder's weights: tensors in sorted name order
// from one PCG stream; norm weights 1 + 0.2·N(0,1), every matrix
// N(0,1)/√fan_in, the embedding 0.5·N(0,1), so activations stay O(1).
func phi3TinyWeights(shapes map[string][]int, seed uint64) []safetensors.Tensor {
	return testutil.SeededF32Tensors(shapes, rand.New(rand.NewPCG(seed, 19)), func(name string, shape []int, rng *rand.Rand) float64 {
		v := rng.NormFloat64()
		switch {
		case strings.HasSuffix(name, "norm.weight"):
			return 1 + 0.2*v
		case len(shape) == 2 && name != "model.embed_tokens.weight":
			return v / math.Sqrt(float64(shape[1]))
		}
		return 0.5 * v
	})
}

// phi3-tiny: hidden 64, intermediate 128, 2 layers, 4 heads and 2 KV heads
// of head_dim 16, vocab 4096, untied.
func phi3TinyTensors() []safetensors.Tensor {
	return phi3TinyWeights(phi3Shapes(64, 128, 4096, 2, 4, 2, 16, false), phi3TinySeed)
}

// phi4mini-tiny: hidden 64, intermediate 96, 2 layers, 4 heads and 1 KV
// head of head_dim 16, vocab 4096, tied.
func phi4MiniTinyTensors() []safetensors.Tensor {
	return phi3TinyWeights(phi3Shapes(64, 96, 4096, 2, 4, 1, 16, true), phi4MiniTinySeed)
}

// TestPhi3TinyWeightsReproduce: the committed model.safetensors files are
// what the seeds give (their provenance), byte for byte.
// FTUNE_WRITE_PHI3_TINY=1 rewrites both.
func TestPhi3TinyWeightsReproduce(t *testing.T) {
	checkTinyWeights(t, phi3Tiny, phi3TinyTensors, "FTUNE_WRITE_PHI3_TINY")
	checkTinyWeights(t, phi4MiniTiny, phi4MiniTinyTensors, "FTUNE_WRITE_PHI3_TINY")
}
