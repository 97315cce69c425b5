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

// gemma2Tiny is the committed random-weight Gemma 2 folder (README there).
const gemma2Tiny = "../testdata/gemma2-tiny"

// gemma2TinySeed and the sizes below define its weights; config.json there
// must agree (TestGemma2TinyWeightsReproduce checks the bytes).
const gemma2TinySeed = 20261207

// gemma2TinyShapes lists every tensor of testdata/gemma2-tiny/config.json
// (hidden 32, intermediate 64, 46 layers, 4 heads, 2 KV heads, head_dim
// 16, vocab 4096, tied embeddings, four norms per layer, no q/k norms),
// spelled out rather than derived from package nn so that the fixture
// does not follow a change in ftune's own shape logic.
func gemma2TinyShapes() map[string][]int {
	const H, I, V, L, NH, NKV, D = 32, 64, 4096, 46, 4, 2, 16
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
		s[p+"mlp.gate_proj.weight"] = []int{I, H}
		s[p+"mlp.up_proj.weight"] = []int{I, H}
		s[p+"mlp.down_proj.weight"] = []int{H, I}
	}
	return s
}

// gemma2TinyWeights draws the weights as gemma3TinyWeights does (tensors in
// sorted name order from one PCG stream; norm weights 0.3·N(0,1), every
// matrix N(0,1)/√fan_in, the embedding 0.5·N(0,1)), from its own seed.
func gemma2TinyWeights() []safetensors.Tensor {
	return testutil.SeededF32Tensors(gemma2TinyShapes(), rand.New(rand.NewPCG(gemma2TinySeed, 17)), func(name string, shape []int, rng *rand.Rand) float64 {
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

// TestGemma2TinyWeightsReproduce: the committed model.safetensors is what
// the seed gives (its provenance), byte for byte. FTUNE_WRITE_GEMMA2_TINY=1
// rewrites it.
func TestGemma2TinyWeightsReproduce(t *testing.T) {
	checkTinyWeights(t, gemma2Tiny, gemma2TinyWeights, "FTUNE_WRITE_GEMMA2_TINY")
}
