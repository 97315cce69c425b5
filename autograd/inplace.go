package autograd

import "github.com/ftune/ftune/tensor"

// Ops that write their result over an input's storage.
//
// A recorded output stays alive until its node's backward has run (see
// lifetimes.go), whether or not any backward reads it. A linear's output,
// for one, is read by no backward (its own reads the input), so the query
// and key projections before RoPE, or the MLP's output before the residual
// add, are held through the whole forward for nothing: about an eighth of
// a decoder block's activations. Writing the next op's result over them
// drops those buffers without changing a value or a gradient.
//
// The tape checks what it can (overwritable); the caller vouches for the
// rest: no recorded backward reads x's value (true of the outputs of
// linears, LoRA, DoRA, RMSNorm, Reshape and Add; not of Exp, Div, Softmax
// or Attention, whose backwards read their outputs), and x is not used
// again except through the returned Var. The model code (nn) calls these
// only on such values; its parity tests against transformers cover every
// family's use of them.

// overwritable reports whether x's storage may be written over: an
// activation produced on this tape (allocated after it began, so never a
// parameter, frozen weight, input or a view of one), not a leaf, dense,
// and not pinned by Keep. A nil tape overwrites nothing; an inference tape
// (NewInference) overwrites its pass's activations as a recording one does.
func (tp *Tape) overwritable(x *Var) bool {
	if tp == nil || x == nil || x.leaf || x.Value == nil || !x.Value.IsContiguous() {
		return false
	}
	if !tp.life.marked || tensor.Born(x.Value) <= tp.life.mark {
		return false
	}
	return !tp.life.pinned[x.Value.Storage()]
}

// RoPEInPlace is RoPE written over x's storage when x is overwritable,
// else RoPE. The values and gradients are RoPE's, bit for bit.
func (tp *Tape) RoPEInPlace(x *Var, cos, sin *tensor.Tensor) *Var {
	if !tp.overwritable(x) {
		return tp.RoPE(x, cos, sin)
	}
	tensor.RoPEInPlace(x.Value, cos, sin, false)
	out := result(x.Value)
	if !tp.needs(x) {
		return out
	}
	tp.record(func() { tp.accumulate(x, tensor.RoPE(out.Grad, cos, sin, true), true) }, out)
	return out
}

// AddInPlace is Add(a, b) written over a's storage when a is overwritable
// and b has a's shape and dtype, else Add. Float addition commutes, so
// AddInPlace(a, b) equals Add(b, a) bit for bit too.
func (tp *Tape) AddInPlace(a, b *Var) *Var {
	if !tp.overwritable(a) || !a.Value.Shape().Equal(b.Value.Shape()) || a.Value.DType() != b.Value.DType() {
		return tp.Add(a, b)
	}
	add := func(av, bv *tensor.Tensor) *tensor.Tensor {
		tensor.AddInPlace(av, bv)
		return av
	}
	return tp.broadcastBinary(add, a, b, func(g, _, _, _ *tensor.Tensor, _, _ bool) (*tensor.Tensor, *tensor.Tensor) {
		return g, g
	})
}
