package tinymodels

import (
	"math"
	"math/rand/v2"
	"strings"
)

// family is how one folder's weights are drawn: its tensors (shapes.go),
// the PCG seed and stream, the value of each element, and the sha256 of
// the model.safetensors these give (the bytes that were committed and that
// the llama.cpp golden logits were computed on).
type family struct {
	shapes       func() map[string][]int
	seed, stream uint64
	draw         func(name string, shape []int, rng *rand.Rand) float64
	sha256       string
}

// families by the name their folder has before "-tiny".
var families = map[string]family{
	// Norm weights 1 + 0.2·N(0,1) (far enough from 1 that a missing or
	// misplaced q_norm / k_norm changes the logits), every matrix
	// N(0,1)/√fan_in (the embedding 0.5·N(0,1)), so activations stay O(1).
	"qwen3": {qwen3Shapes, 20261205, 13, func(name string, shape []int, rng *rand.Rand) float64 {
		scale := 0.5
		if len(shape) == 2 && name != "model.embed_tokens.weight" {
			scale = 1 / math.Sqrt(float64(shape[1]))
		}
		v := scale * rng.NormFloat64()
		if strings.HasSuffix(name, "norm.weight") {
			v = 1 + 0.2*rng.NormFloat64() // the draw above is consumed too, as the folder was first made
		}
		return v
	}, "3427ff66d783d702e3645fd01db2a15d44163f23a452b4e2183032e376c0fd7d"},
	"gemma2": {gemma2Shapes, 20261207, 17, gemmaDraw,
		"d77ebd3ee23acd7c6ade03b9c87239ea2d46e8edc8ce54d24669944a0ef0d6fa"},
	"gemma3": {gemma3Shapes, 20261206, 17, gemmaDraw,
		"dc485a382a84aedf11f2221696fe8f86c444d11e5d8afea6be8de479288aec54"},
	// Phi-3.5-mini's layout: 4 heads and 2 KV heads of head_dim 16, untied.
	"phi3": {func() map[string][]int { return phi3Shapes(64, 128, 4096, 2, 4, 2, 16, false) }, 20261207, 19, phiDraw,
		"11c6697018b131a54213a807df001590678df0ef0b89eedf1754762ff1545541"},
	// Phi-4-mini's layout: intermediate 96, 1 KV head, tied.
	"phi4mini": {func() map[string][]int { return phi3Shapes(64, 96, 4096, 2, 4, 1, 16, true) }, 20261208, 19, phiDraw,
		"f08f3bdf7050379d9f94e165c2512b1b0ae8dd7e04ea9be63d35351feceb0c7b"},
	// SmolLM3's layout (Llama's tensors, tied), drawn as Phi's.
	"smollm3": {smollm3Shapes, 20261207, 23, phiDraw,
		"e476388ae317eef07f447a82e81861c194e349b226fc585a24ad6d9c25a200ac"},
	// Granite's layout with every bias (biases 0.5·N(0,1)), tied, drawn as Phi's.
	"granite": {graniteShapes, 20261207, 29, phiDraw,
		"e0adc7d62606fb7dcf6d12e6a46e123fb62b6e52b4ef443f70de51cdede26761"},
}

// gemmaDraw: norm weights 0.3·N(0,1) (Gemma stores w and scales by 1 + w,
// so these are far enough from 0 that a norm read as w, or as 1, changes
// the logits), every matrix N(0,1)/√fan_in, the embedding 0.5·N(0,1).
func gemmaDraw(name string, shape []int, rng *rand.Rand) float64 {
	scale := 0.5
	switch {
	case strings.HasSuffix(name, "norm.weight"):
		scale = 0.3
	case len(shape) == 2 && name != "model.embed_tokens.weight":
		scale = 1 / math.Sqrt(float64(shape[1]))
	}
	return scale * rng.NormFloat64()
}

// phiDraw: norm weights 1 + 0.2·N(0,1), every matrix N(0,1)/√fan_in, the
// embedding 0.5·N(0,1).
func phiDraw(name string, shape []int, rng *rand.Rand) float64 {
	v := rng.NormFloat64()
	switch {
	case strings.HasSuffix(name, "norm.weight"):
		return 1 + 0.2*v
	case len(shape) == 2 && name != "model.embed_tokens.weight":
		return v / math.Sqrt(float64(shape[1]))
	}
	return 0.5 * v
}
