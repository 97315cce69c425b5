package lora

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/kernels/dropout"
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
	// drop is the dropout stream (kernels/dropout); saved in checkpoints
	// for exact resume.
	drop *dropoutStream
	// wsq is DoRA's ‖W_i‖² per row of the weight wsqOf (weightSquares).
	wsqMu sync.Mutex
	wsq   *tensor.Tensor
	wsqOf *tensor.Tensor
}

// dropoutStream is a layer's position in its counter-based dropout
// stream: masks are drawn where the activations live, a GPU's included,
// from the key and the position alone.
type dropoutStream struct{ key, pos uint64 }

// rngMagic starts a saved dropout stream ("pcg:" started the math/rand
// PCG states of earlier versions).
const rngMagic = "ftune-dropout-splitmix64:"

// RNGState returns the dropout stream's state.
func (l *Layer) RNGState() ([]byte, error) {
	b := append([]byte(rngMagic), make([]byte, 16)...)
	binary.BigEndian.PutUint64(b[len(rngMagic):], l.drop.key)
	binary.BigEndian.PutUint64(b[len(rngMagic)+8:], l.drop.pos)
	return b, nil
}

// SetRNGState restores a state from RNGState.
func (l *Layer) SetRNGState(b []byte) error {
	if len(b) == 20 && string(b[:4]) == "pcg:" {
		return fmt.Errorf("lora: %s: the checkpoint's dropout stream is a PCG state, written by an ftune before 2026-12-05 whose masks were drawn on the host; this version draws them from a counter-based stream (kernels/dropout) and cannot continue that one: resume with the version that wrote it, or restart the run", l.Module)
	}
	if len(b) != len(rngMagic)+16 || string(b[:len(rngMagic)]) != rngMagic {
		return fmt.Errorf("lora: %s: dropout stream state of %d bytes is not one ftune wrote (%q and two 64-bit words expected)", l.Module, len(b), rngMagic)
	}
	l.drop.key = binary.BigEndian.Uint64(b[len(rngMagic):])
	l.drop.pos = binary.BigEndian.Uint64(b[len(rngMagic)+8:])
	return nil
}

// SkipDropout moves the dropout stream past n draws (four mask elements
// each): the rows of a micro-batch another data-parallel worker runs.
func (l *Layer) SkipDropout(n uint64) { l.drop.pos += n }

// Forward implements nn.Adapter as one fused tape node (the base GEMM and
// the low-rank path share the node; no W + s·B·A is formed).
func (l *Layer) Forward(tp *autograd.Tape, lin *nn.Linear, x *autograd.Var) (*autograd.Var, bool) {
	if l.Disabled || l.merged {
		return lin.Base(tp, x), true
	}
	if !tp.Training() || l.Dropout == 0 {
		if l.Magnitude != nil {
			return l.doraForward(tp, lin, x, nil), true
		}
		return tp.LoRALinear(x, lin.Weight, lin.Bias, l.A, l.B, l.Scale, nil), true
	}
	// In a checkpointed block the recompute must draw this same mask.
	tp.Preserve(l.drop)
	if l.Magnitude != nil {
		return l.doraForward(tp, lin, x, l.dropoutMask(x.Value)), true
	}
	stream := &tensor.DropoutStream{Key: l.drop.key, Pos: l.drop.pos, P: l.Dropout}
	l.drop.pos += dropout.Draws(x.Value.Numel())
	// The mask is drawn where it is used, in the forward and again in the
	// backward, and never stored (LoRALinear).
	return tp.LoRALinear(x, lin.Weight, lin.Bias, l.A, l.B, l.Scale, stream), true
}

// Snapshot makes the dropout stream an autograd.Stateful: a checkpointed
// block's recompute replays it from where the block's first forward began.
func (d *dropoutStream) Snapshot() func() {
	saved := *d
	return func() { *d = saved }
}

// dropoutMask draws keep/drop per element, scaled by 1/(1−p) as
// torch.nn.Dropout does, from the layer's own seeded stream, on x's
// backend (kernels/dropout: p is honoured to 1/65536).
func (l *Layer) dropoutMask(x *tensor.Tensor) *tensor.Tensor {
	m := tensor.DropoutMask(x.Backend(), l.drop.key, l.drop.pos, l.Dropout, x.Shape()...)
	l.drop.pos += dropout.Draws(x.Numel())
	mx := m.To(x.DType())
	releaseCopy(m, mx) // the float32 mask, when mx is its converted copy
	return mx
}

// Delta returns s·B·A [out,in], the update plain LoRA adds to W (DoRA
// also rescales the rows: see MergedWeight).
func (l *Layer) Delta() *tensor.Tensor {
	d := tensor.MatMul(l.B.Value, l.A.Value, false, false)
	tensor.ScaleInPlace(d, l.Scale)
	return d
}
