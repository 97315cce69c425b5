package autograd

import "github.com/ftune/ftune/tensor"

// Reshape returns a with a new shape (one -1 allowed).
func (tp *Tape) Reshape(a *Var, shape ...int) *Var {
	out := result(a.Value.Reshape(shape...))
	if !tp.needs(a) {
		return out
	}
	orig := a.Shape().Clone()
	tp.record(func() { tp.accumulate(a, out.Grad.Reshape(orig...), tp.handOff()) }, out)
	return out
}

// Permute reorders axes.
func (tp *Tape) Permute(a *Var, axes ...int) *Var {
	out := result(a.Value.Permute(axes...))
	if !tp.needs(a) {
		return out
	}
	inv := make([]int, len(axes))
	for i, ax := range axes {
		inv[normAxis(ax, len(axes))] = i
	}
	tp.record(func() {
		g := out.Grad.Permute(inv...).Contiguous()
		tp.accumulate(a, g, tp.handOff() || g.Storage() != out.Grad.Storage())
	}, out)
	return out
}

// Transpose swaps two axes.
func (tp *Tape) Transpose(a *Var, i, j int) *Var {
	axes := make([]int, a.Value.Rank())
	for k := range axes {
		axes[k] = k
	}
	i, j = normAxis(i, len(axes)), normAxis(j, len(axes))
	axes[i], axes[j] = axes[j], axes[i]
	return tp.Permute(a, axes...)
}

// Narrow keeps [start, start+length) of one axis.
//
// Its backward adds the slice's gradient into its own columns of a's
// gradient when a already has one: the pieces of a Split (Phi-3's fused
// qkv_proj and gate_up_proj outputs, a partial rotary's halves) then share
// one whole-width buffer. Only the first piece to arrive allocates it,
// zeroed; a zero-padded whole-width copy per piece, added to the rest,
// cost one more whole-width tensor per piece after the first
// (TestSplitBackwardAllocatesOneGradient).
func (tp *Tape) Narrow(a *Var, axis, start, length int) *Var {
	out := result(a.Value.Narrow(axis, start, length))
	if !tp.needs(a) {
		return out
	}
	shape, dt := a.Shape(), a.Value.DType()
	tp.record(func() {
		if a.Grad != nil && a.Grad.DType() == out.Grad.DType() {
			// a.Grad is the tape's (or the parameter's) own buffer, which
			// accumulate also adds into in place.
			tensor.AddInPlace(a.Grad.Narrow(axis, start, length), out.Grad)
			a.gradKnown = false
			return
		}
		g := tensor.Zeros(out.Grad.Backend(), dt, shape...)
		g.Narrow(axis, start, length).CopyFrom(out.Grad)
		tp.accumulate(a, g, true)
	}, out)
	return out
}

// Concat joins along axis.
func (tp *Tape) Concat(axis int, vs ...*Var) *Var {
	ts := make([]*tensor.Tensor, len(vs))
	for i, v := range vs {
		ts[i] = v.Value
	}
	out := result(tensor.Concat(axis, ts...))
	if !tp.needs(vs...) {
		return out
	}
	tp.record(func() {
		off := 0
		for _, v := range vs {
			n := v.Value.Dim(axis)
			// A piece that is not contiguous (any axis but the first) is
			// copied here; that copy is the piece's own, so accumulate
			// takes it without copying it again.
			g := out.Grad.Narrow(axis, off, n).Contiguous()
			tp.accumulate(v, g, g.Storage() != out.Grad.Storage())
			off += n
		}
	}, out)
	return out
}

// Split cuts along axis into pieces of the given sizes.
func (tp *Tape) Split(a *Var, axis int, sizes ...int) []*Var {
	out := make([]*Var, len(sizes))
	off := 0
	for i, n := range sizes {
		out[i] = tp.Narrow(a, axis, off, n)
		off += n
	}
	return out
}
