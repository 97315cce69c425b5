package lora

import (
	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// DoRA (weight-decomposed LoRA, use_dora) as PEFT 0.21 computes it
// (peft/tuners/lora/dora.py DoraLinearLayer, variants.py
// DoraLinearVariant): each adapted linear gets a trainable magnitude m
// [out], initialised to the row norms of W + s·B·A, and computes
//
//	y = W·x + b + (m/n − 1) ⊙ (W·x) + (m/n) ⊙ s·B·A·x,  n = ‖W + s·B·A‖ per row,
//
// with n detached (the paper's section 4.3: no gradient flows through the
// norm). Without dropout that is (m/n) ⊙ (W·x + s·B·A·x) + b. With dropout
// in training PEFT recomputes the base on the dropped-out input:
// y = W·x + b + (m/n − 1) ⊙ (W·xd) + (m/n) ⊙ s·B·A·xd.
// An NF4 base enters the norm dequantized, as PEFT dequantizes a bnb weight.

// PartMagnitude is the name of DoRA's magnitude vector inside a module.
const PartMagnitude = "lora_magnitude_vector"

// MagnitudeName is the in-memory (and, after SavedPrefix, the saved) name
// of a module's DoRA magnitude: PEFT's state dict drops the ".weight" of
// its DoraLinearLayer, so the key ends with "lora_magnitude_vector".
func MagnitudeName(module string) string { return module + "." + PartMagnitude }

// rowNorms returns ‖w + s·B·A‖ of every row of w [out,in] in float32: the
// weight (dequantized when NF4) plus the layer's scaled update, and that
// sum itself.
func (l *Layer) rowNorms(w *tensor.Tensor) (norm, sum *tensor.Tensor) {
	sum = l.updated(w)
	return tensor.Sqrt(tensor.Sum(tensor.Square(sum), 1, false)), sum
}

// updated returns W + s·B·A in float32 (a new tensor).
func (l *Layer) updated(w *tensor.Tensor) *tensor.Tensor {
	d := tensor.MatMul(l.B.Value.To(tensor.F32), l.A.Value.To(tensor.F32), false, false)
	return tensor.Add(w.To(tensor.F32), tensor.Scale(d, l.Scale))
}

// initMagnitude sets m to the row norms of W + s·B·A (PEFT's
// DoraLinearLayer.update_layer), as a parameter of the adapter's dtype.
func (l *Layer) initMagnitude(w *tensor.Tensor, dt tensor.DType) {
	norm, _ := l.rowNorms(w)
	l.Magnitude = autograd.Param(norm.To(dt), MagnitudeName(l.Module))
}

// doraForward computes the DoRA layer (see the package comment above).
// mask is the dropout mask (nil: no dropout, or inference).
func (l *Layer) doraForward(tp *autograd.Tape, lin *nn.Linear, x *autograd.Var, mask *tensor.Tensor) *autograd.Var {
	norm, _ := l.rowNorms(lin.Weight.Value)
	// m/n with n a constant: the gradient reaches m only.
	factor := tp.Div(l.Magnitude, autograd.Const(norm.To(l.Magnitude.Value.DType())))
	// With bf16 activations the float32 magnitude's factor meets the bf16
	// output in bf16 (its gradient returns in float32 through the cast).
	factor = tp.Cast(factor, x.Value.DType())
	if mask == nil {
		// (m/n) ⊙ (W·x + s·B·A·x) + b: the fused LoRA node, then one
		// broadcast multiply.
		z := tp.LoRALinear(x, lin.Weight, nil, l.A, l.B, l.Scale, nil)
		y := tp.Mul(z, factor)
		if lin.Bias != nil {
			y = tp.Add(y, lin.Bias)
		}
		return y
	}
	// W·x + b + (m/n − 1)⊙(W·xd) + (m/n)⊙s·B·A·xd
	//   = W·(x − xd) + b + (m/n)⊙(W·xd + s·B·A·xd):
	// the fused node on xd, one broadcast multiply, and the base on
	// x − xd = x⊙(1 − mask) (mask holds 0 or 1/(1−p)). The same two weight GEMMs as PEFT's
	// F.linear(x) and F.linear(dropout(x)), with fewer passes over the
	// activations (3.7x a LoRA step on tiny-base when written as PEFT
	// does, 1.5x this way).
	oneMinusMask := tensor.AddScalar(tensor.Neg(mask), 1)
	xd := tp.Mul(x, autograd.Const(mask))
	z := tp.LoRALinear(xd, lin.Weight, nil, l.A, l.B, l.Scale, nil)
	rest := tp.Linear(tp.Mul(x, autograd.Const(oneMinusMask)), lin.Weight, lin.Bias)
	return tp.Add(rest, tp.Mul(z, factor))
}

// MergedWeight returns, in float32, the weight that computes this layer
// without the adapter: W + s·B·A for LoRA, and for DoRA PEFT's merge
// (m/n) ⊙ (W + s·B·A) row by row, n the row norms of W + s·B·A. The bias
// is left as it is (DoRA scales W·x only). w is the base weight (any
// float dtype or NF4); it is not modified.
func (l *Layer) MergedWeight(w *tensor.Tensor) *tensor.Tensor {
	if l.Magnitude == nil {
		return l.updated(w)
	}
	norm, sum := l.rowNorms(w)
	factor := tensor.Div(l.Magnitude.Value.To(tensor.F32), norm)
	return tensor.Mul(sum, factor.Reshape(-1, 1))
}
