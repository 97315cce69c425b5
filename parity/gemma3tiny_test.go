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

// gemma3Tiny is the committed random-weight Gemma 3 folder (README there).
const gemma3Tiny = "../testdata/gemma3-tiny"

// gemma3TinySeed and the sizes below define its weights; config.json there
// must agree (TestGemma3TinyWeightsReproduce checks the bytes).
const gemma3TinySeed = 20261206

// gemma3TinyShapes lists every tensor of testdata/gemma3-tiny/config.json
// (hidden 64, intermediate 128, 4 layers, 4 heads, 1 KV head, head_dim 32,
// vocab 4096, tied embeddings, four norms per layer and q/k norms),
// spelled out rather than derived from package nn so that the fixture
// does not follow a change in ftune's own shape logic.
func gemma3TinyShapes() map[string][]int {
	const H, I, V, L, NH, NKV, D = 64, 128, 4096, 4, 4, 1, 32
	s := map[string][]int{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}}
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, n := range []string{"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
			s[p+n+".weight"] = []int{H}
		}
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

// gemma3TinyWeights draws the weights: tensors in sorted name order from
// one PCG stream; norm weights 0.3·N(0,1) (Gemma stores w and scales by
// 1 + w, so these are far enough from 0 that a norm read as w, or as 1,
// changes the logits), every matrix N(0,1)/√fan_in, the embedding
// 0.5·N(0,1).
func gemma3TinyWeights() []safetensors.Tensor {
	return testutil.SeededF32Tensors(gemma3TinyShapes(), rand.New(rand.NewPCG(gemma3TinySeed, 17)), func(name string, shape []int, rng *rand.Rand) float64 {
		scale := 0.5
		switch {
		case strings.HasSuffix(name, "norm.weight"):
			scale = 0.3
		case len(shape) == 2 && name != "model.embed_tokens.weight":
			scale = 1 / math.Sqrt(float64(shape[1]))
		}
		return scale * rng.NormFloat64()
	})
}

// TestGemma3TinyWeightsReproduce: the committed model.safetensors is what
// the seed gives (its provenance), byte for byte. FTUNE_WRITE_GEMMA3_TINY=1
// rewrites it.
func TestGemma3TinyWeightsReproduce(t *testing.T) {
	checkTinyWeights(t, gemma3Tiny, gemma3TinyWeights, "FTUNE_WRITE_GEMMA3_TINY")
}
