package testutil

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/ftune/ftune/internal/safetensors"
)

// SeededF32Tensors makes float32 tensors of the given shapes for random
// test models and committed tiny fixtures: tensors in sorted name order,
// every element drawn by draw from the one stream rng, so a seed always
// gives the same bytes. draw is called once per element with the tensor's
// name and shape (it may consume any number of values of rng).
func SeededF32Tensors(shapes map[string][]int, rng *rand.Rand, draw func(name string, shape []int, rng *rand.Rand) float64) []safetensors.Tensor {
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]safetensors.Tensor, 0, len(names))
	for _, name := range names {
		shape := shapes[name]
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(draw(name, shape, rng))))
		}
		out = append(out, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: data})
	}
	return out
}
