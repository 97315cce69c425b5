package lora

import (
	"math/rand/v2"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// Layer is the adapter of one linear module: y = W·x + s·B·(A·dropout(x)),
// A [r,in], B [out,r] in float32, W frozen. With DoRA (Magnitude set) the
// output is rescaled per feature; see doraForward.
type Layer struct {
	Module  string
	A, B    *autograd.Var
	Scale   float64
	Dropout float64
	// Magnitude is DoRA's trainable magnitude vector m [out] (nil for plain
	// LoRA), saved as PEFT's "<module>.lora_magnitude_vector".
	Magnitude *autograd.Var
	// mergedNorm is ‖W + s·B·A‖ per row at merge time: Unmerge divides by
	// the factor Merge applied, as PEFT caches it (the merged weight no
	// longer gives it back).
	mergedNorm *tensor.Tensor
	// Disabled layers compute the plain base layer.
	Disabled bool
	merged   bool
	src      *rand.PCG // dropout stream; saved in checkpoints for exact resume
	rng      *rand.Rand
}

// RNGState returns the dropout stream's state.
func (l *Layer) RNGState() ([]byte, error) { return l.src.MarshalBinary() }

// SetRNGState restores a state from RNGState.
func (l *Layer) SetRNGState(b []byte) error { return l.src.UnmarshalBinary(b) }

// Forward implements nn.Adapter as one fused tape node (the base GEMM and
// the low-rank path share the node; no W + s·B·A is formed).
func (l *Layer) Forward(tp *autograd.Tape, lin *nn.Linear, x *autograd.Var) (*autograd.Var, bool) {
	if l.Disabled || l.merged {
		return lin.Base(tp, x), true
	}
	var mask *tensor.Tensor
	if tp.Training() && l.Dropout > 0 {
		// In a checkpointed block the recompute must draw this same mask.
		tp.Preserve(dropoutStream{l.src})
		mask = l.dropoutMask(x.Value)
	}
	if l.Magnitude != nil {
		return l.doraForward(tp, lin, x, mask), true
	}
	return tp.LoRALinear(x, lin.Weight, lin.Bias, l.A, l.B, l.Scale, mask), true
}

// dropoutStream is a layer's dropout stream as autograd.Stateful: a
// checkpointed block's recompute replays it from where the block's first
// forward began (a PCG is two words; rand.Rand keeps no buffer over it).
type dropoutStream struct{ src *rand.PCG }

func (d dropoutStream) Snapshot() func() {
	saved := *d.src
	return func() { *d.src = saved }
}

// dropoutMask draws keep/drop per element, scaled by 1/(1−p) as
// torch.nn.Dropout does, from the layer's own seeded stream. Each 64-bit
// draw decides four elements (16 bits each: p is honoured to 1/65536).
func (l *Layer) dropoutMask(x *tensor.Tensor) *tensor.Tensor {
	n := x.Numel()
	m := make([]float32, n)
	keep := float32(1 / (1 - l.Dropout))
	drop := uint64(l.Dropout * 65536)
	for i := 0; i < n; i += 4 {
		r := l.rng.Uint64()
		for j := i; j < min(i+4, n); j++ {
			if r&0xffff >= drop {
				m[j] = keep
			}
			r >>= 16
		}
	}
	return tensor.FromHost(x.Backend(), tensor.F32, m, x.Shape()...).To(x.DType())
}

// Delta returns s·B·A [out,in], the update plain LoRA adds to W (DoRA
// also rescales the rows: see MergedWeight).
func (l *Layer) Delta() *tensor.Tensor {
	d := tensor.MatMul(l.B.Value, l.A.Value, false, false)
	tensor.ScaleInPlace(d, l.Scale)
	return d
}
