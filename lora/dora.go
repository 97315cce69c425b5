package lora

import (
	"fmt"

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
// sum itself (the caller's to release). PEFT's merge computes them so, and
// Merge does; the forward takes forwardNorms, which forms no W + s·B·A.
// Each weight-sized temporary goes back to the backend as soon as it is
// read, not to Go's collector.
func (l *Layer) rowNorms(w *tensor.Tensor) (norm, sum *tensor.Tensor) {
	sum = l.updated(w)
	sq := tensor.Square(sum)
	ss := tensor.Sum(sq, 1, false)
	norm = tensor.Sqrt(ss)
	release(sq, ss)
	return norm, sum
}

// updated returns W + s·B·A in float32 (a new tensor).
func (l *Layer) updated(w *tensor.Tensor) *tensor.Tensor {
	bf, af, wf := l.B.Value.To(tensor.F32), l.A.Value.To(tensor.F32), w.To(tensor.F32)
	d := tensor.MatMul(bf, af, false, false)
	sd := tensor.Scale(d, l.Scale)
	sum := tensor.Add(wf, sd)
	release(d, sd)
	releaseCopy(bf, l.B.Value)
	releaseCopy(af, l.A.Value)
	releaseCopy(wf, w)
	return sum
}

// forwardNorms is rowNorms' norm for the forward, without forming
// W + s·B·A: per row i,
//
//	‖W_i + s·(B·A)_i‖² = ‖W_i‖² + 2s·Σ_k B_ik·(A·Wᵀ)_ki + s²·Σ_k (B·A·Aᵀ)_ik·B_ik,
//
// with ‖W_i‖² computed once per weight (it is frozen) and the rest [r, out],
// [r, r] and [out, r] products: one pass over W a forward instead of an
// [out, in] float32 sum and its square (at Llama-3-8B's widths, 7 billion
// float32 values formed and read again each forward). The rounding differs
// from the direct sum's in the last bits of the norm (the sum of squares
// is accumulated in another order); rounding can make a row's square a
// hair below 0 only when W_i ≈ −s·(B·A)_i, and it is clamped there.
func (l *Layer) forwardNorms(w *tensor.Tensor) *tensor.Tensor {
	af, bf := l.A.Value.To(tensor.F32), l.B.Value.To(tensor.F32)
	wm := w
	if dt := w.DType(); dt != tensor.F32 && dt != tensor.BF16 && dt != tensor.NF4 {
		wm = w.To(tensor.F32) // the GEMM's B operand: float32, bf16 or NF4
	}
	aw := tensor.MatMul(af, wm, false, true) // A·Wᵀ [r, out]
	awT := aw.Transpose(0, 1).Contiguous()
	bw := tensor.Mul(bf, awT)
	cross := tensor.Sum(bw, 1, false)
	aat := tensor.MatMul(af, af, false, true) // A·Aᵀ [r, r]
	baat := tensor.MatMul(bf, aat, false, false)
	bq := tensor.Mul(baat, bf)
	quad := tensor.Sum(bq, 1, false)
	c2, q2 := tensor.Scale(cross, 2*l.Scale), tensor.Scale(quad, l.Scale*l.Scale)
	rest := tensor.Add(c2, q2)
	sq := tensor.Add(l.weightSquares(w), rest)
	zero := tensor.Zeros(sq.Backend(), tensor.F32, 1)
	clamped := tensor.Maximum(sq, zero)
	norm := tensor.Sqrt(clamped)
	release(aw, awT, bw, cross, aat, baat, bq, quad, c2, q2, rest, sq, zero, clamped)
	releaseCopy(bf, l.B.Value)
	releaseCopy(af, l.A.Value)
	releaseCopy(wm, w)
	return norm
}

// weightSquares returns ‖W_i‖² for every row of w in float32, computed once
// for the weight tensor it is given and again only if the layer's weight
// tensor changes (a model whose base weights were replaced).
func (l *Layer) weightSquares(w *tensor.Tensor) *tensor.Tensor {
	l.wsqMu.Lock()
	defer l.wsqMu.Unlock()
	if l.wsqOf != w {
		wf := w.To(tensor.F32)
		sq := tensor.Square(wf)
		l.wsq, l.wsqOf = tensor.Sum(sq, 1, false), w
		release(sq)
		releaseCopy(wf, w)
	}
	return l.wsq
}

// forgetWeightSquares drops the cached ‖W_i‖² (the weight was written in
// place: Merge, Unmerge).
func (l *Layer) forgetWeightSquares() {
	l.wsqMu.Lock()
	defer l.wsqMu.Unlock()
	l.wsq, l.wsqOf = nil, nil
}

// releaseCopy gives back c when it is a copy of t (what To makes for
// another dtype), never t itself.
func releaseCopy(c, t *tensor.Tensor) {
	if c != t {
		release(c)
	}
}

// release gives temporaries back to their backend (tensor.Release); a
// failure is a panic the model's Forward returns as its error.
func release(ts ...*tensor.Tensor) {
	if err := tensor.ReleaseAll(ts...); err != nil {
		panic(&tensor.Error{Err: fmt.Errorf("lora: %w", err)})
	}
}

// initMagnitude sets m to the row norms of W + s·B·A (PEFT's
// DoraLinearLayer.update_layer), as a parameter of the adapter's dtype.
func (l *Layer) initMagnitude(w *tensor.Tensor, dt tensor.DType) {
	norm := l.forwardNorms(w)
	mag := norm.To(dt)
	releaseCopy(norm, mag) // norm, when mag is its converted copy
	l.Magnitude = autograd.Param(mag, MagnitudeName(l.Module))
}

// doraForward computes the DoRA layer (see the package comment above).
// mask is the dropout mask (nil: no dropout, or inference).
func (l *Layer) doraForward(tp *autograd.Tape, lin *nn.Linear, x *autograd.Var, mask *tensor.Tensor) *autograd.Var {
	norm := l.forwardNorms(lin.Weight.Value)
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
	// x − xd. The same two weight GEMMs as PEFT's F.linear(x) and
	// F.linear(dropout(x)), with fewer passes over the activations.
	xd := tp.Mul(x, autograd.Const(mask))
	// The mask is read again only by xd's backward: given back once the
	// backward is done, not left to the collector (an activation's size
	// for every adapted linear, every step).
	tp.ReleaseAfterBackward(mask)
	z := tp.LoRALinear(xd, lin.Weight, nil, l.A, l.B, l.Scale, nil)
	rest := tp.Linear(tp.Sub(x, xd), lin.Weight, lin.Bias)
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
	merged := tensor.Mul(sum, factor.Reshape(-1, 1))
	release(sum, factor, norm)
	return merged
}
