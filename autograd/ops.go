package autograd

import (
	"github.com/ftune/ftune/tensor"
)

// MatMul returns op(a)·op(b) over the last two axes. b may be rank 2 and
// shared by every batch of a (a weight); then transA must be false.
func (tp *Tape) MatMul(a, b *Var, transA, transB bool) *Var {
	out := result(tensor.MatMul(a.Value, b.Value, transA, transB))
	if !tp.needs(a, b) {
		return out
	}
	// Each operand is read in the backward only for the other's gradient,
	// and through valueForBackward: a frozen weight's input may be
	// forgotten (Forget) and is then never computed again.
	readsLazily(a)
	readsLazily(b)
	tp.record(func() {
		g := out.Grad
		if a.requiresGrad {
			bv := b.valueForBackward()
			var da *tensor.Tensor
			switch {
			case !transA && !transB:
				da = tensor.MatMul(g, bv, false, true)
			case !transA && transB:
				da = tensor.MatMul(g, bv, false, false)
			case transA && !transB:
				da = tensor.MatMul(bv, g, false, true)
			default:
				da = tensor.MatMul(bv, g, true, true)
			}
			tp.accumulate(a, da, true)
		}
		if b.requiresGrad {
			av := a.valueForBackward()
			x, gg := av, g
			if len(b.Shape()) == 2 && av.Rank() > 2 {
				// A shared weight: fold the batch axes into rows.
				x = av.Reshape(-1, av.Dim(-1))
				gg = g.Reshape(-1, g.Dim(-1))
			}
			var db *tensor.Tensor
			switch {
			case !transA && !transB:
				db = tensor.MatMul(x, gg, true, false)
			case !transA && transB:
				db = tensor.MatMul(gg, x, true, false)
			case transA && !transB:
				db = tensor.MatMul(x, gg, false, false)
			default:
				db = tensor.MatMul(gg, x, true, true)
			}
			tp.accumulate(b, db, true)
		}
	}, out)
	return out
}

// Linear returns x·wᵀ (+ bias) for a weight w [out,in] in Hugging Face
// layout. A frozen w may be BF16; it gets no gradient.
func (tp *Tape) Linear(x, w, bias *Var) *Var {
	y := tp.MatMul(x, w, false, true)
	if bias != nil {
		y = tp.Add(y, bias)
	}
	return y
}

func (tp *Tape) broadcastBinary(op func(a, b *tensor.Tensor) *tensor.Tensor, a, b *Var, grads func(g, av, bv, out *tensor.Tensor, wantA, wantB bool) (da, db *tensor.Tensor)) *Var {
	out := result(op(a.Value, b.Value))
	if !tp.needs(a, b) {
		return out
	}
	av, bv := a.Value, b.Value
	tp.record(func() {
		g := out.Grad
		da, db := grads(g, av, bv, out.Value, a.requiresGrad, b.requiresGrad)
		// A gradient that is out.Grad itself may go to one input without a
		// copy (handOff); anything else SumTo or grads returned is new,
		// unless both sides got the same tensor.
		gaveG := !tp.handOff()
		owned := func(t, src *tensor.Tensor) bool {
			if src == g && t == g {
				if gaveG {
					return false
				}
				gaveG = true
				return true
			}
			return t != src || (t != g && da != db)
		}
		if a.requiresGrad {
			ga := tensor.SumTo(da, av.Shape())
			tp.accumulate(a, ga, owned(ga, da))
			releaseSummed(ga, da, g, db)
		}
		if b.requiresGrad {
			gb := tensor.SumTo(db, bv.Shape())
			tp.accumulate(b, gb, owned(gb, db))
			releaseSummed(gb, db, g, da)
		}
	}, out)
	return out
}

// releaseSummed gives back d, a full-size gradient grads made, once SumTo
// has reduced it to a broadcast input's shape (sum, a new tensor): a
// magnitude's or a bias's gradient left a [tokens, features] tensor to Go's
// collector every step. Not g (the tape's) nor one the other input took.
func releaseSummed(sum, d, g, other *tensor.Tensor) {
	if sum.Storage() != d.Storage() && d != g && d != other {
		release(d)
	}
}

// Add returns a+b with broadcasting.
func (tp *Tape) Add(a, b *Var) *Var {
	return tp.broadcastBinary(tensor.Add, a, b, func(g, _, _, _ *tensor.Tensor, _, _ bool) (*tensor.Tensor, *tensor.Tensor) {
		return g, g
	})
}

// Sub returns a−b with broadcasting.
func (tp *Tape) Sub(a, b *Var) *Var {
	return tp.broadcastBinary(tensor.Sub, a, b, func(g, _, _, _ *tensor.Tensor, _, wantB bool) (da, db *tensor.Tensor) {
		if !wantB {
			return g, nil
		}
		return g, tensor.Neg(g)
	})
}

// Mul returns a·b with broadcasting.
func (tp *Tape) Mul(a, b *Var) *Var {
	return tp.broadcastBinary(tensor.Mul, a, b, func(g, av, bv, _ *tensor.Tensor, wantA, wantB bool) (da, db *tensor.Tensor) {
		// Only what an input takes: x·mask's backward (a constant mask)
		// need not multiply g by x.
		if wantA {
			da = tensor.Mul(g, bv)
		}
		if wantB {
			db = tensor.Mul(g, av)
		}
		return da, db
	})
}

// Div returns a/b with broadcasting.
func (tp *Tape) Div(a, b *Var) *Var {
	return tp.broadcastBinary(tensor.Div, a, b, func(g, _, bv, out *tensor.Tensor, wantA, wantB bool) (da, db *tensor.Tensor) {
		da = tensor.Div(g, bv)
		if wantB {
			p := tensor.Mul(da, out)
			db = tensor.Neg(p)
			release(p)
		}
		if !wantA {
			release(da)
			da = nil
		}
		return da, db
	})
}

func (tp *Tape) unary(a *Var, f func(*tensor.Tensor) *tensor.Tensor, grad func(g, x, y *tensor.Tensor) *tensor.Tensor) *Var {
	out := result(f(a.Value))
	if !tp.needs(a) {
		return out
	}
	x := a.Value
	tp.record(func() { tp.accumulate(a, grad(out.Grad, x, out.Value), true) }, out)
	return out
}

// Scale returns s·a.
func (tp *Tape) Scale(a *Var, s float64) *Var {
	out := result(tensor.Scale(a.Value, s))
	if !tp.needs(a) {
		return out
	}
	tp.record(func() {
		first := a.Grad == nil
		g := tensor.Scale(out.Grad, s)
		tp.accumulate(a, g, true)
		// A gradient of ones scaled is s rounded once to the dtype, on
		// every backend (x·s with x = 1 is exact before the rounding); the
		// trainer's loss scaling makes exactly this node.
		if first && out.gradKnown && out.gradValue == 1 && a.Grad == g {
			switch g.DType() {
			case tensor.F32:
				a.gradKnown, a.gradValue = true, float64(float32(s))
			case tensor.F64:
				a.gradKnown, a.gradValue = true, s
			}
		}
	}, out)
	return out
}

// Neg returns −a.
func (tp *Tape) Neg(a *Var) *Var { return tp.Scale(a, -1) }

// Exp returns eᵃ.
func (tp *Tape) Exp(a *Var) *Var {
	return tp.unary(a, tensor.Exp, func(g, _, y *tensor.Tensor) *tensor.Tensor { return tensor.Mul(g, y) })
}

// Log returns ln a.
func (tp *Tape) Log(a *Var) *Var {
	return tp.unary(a, tensor.Log, func(g, x, _ *tensor.Tensor) *tensor.Tensor { return tensor.Div(g, x) })
}

// Silu returns a·σ(a).
func (tp *Tape) Silu(a *Var) *Var {
	return tp.unary(a, tensor.Silu, func(g, x, _ *tensor.Tensor) *tensor.Tensor { return tensor.Mul(g, tensor.SiluGrad(x)) })
}

// Square returns a².
func (tp *Tape) Square(a *Var) *Var {
	return tp.unary(a, tensor.Square, func(g, x, _ *tensor.Tensor) *tensor.Tensor { return tensor.Scale(tensor.Mul(g, x), 2) })
}

// Rsqrt returns 1/√a.
func (tp *Tape) Rsqrt(a *Var) *Var {
	return tp.unary(a, func(x *tensor.Tensor) *tensor.Tensor { return tensor.Pow(x, -0.5) },
		func(g, x, y *tensor.Tensor) *tensor.Tensor {
			// d/dx x^-1/2 = −½·y/x
			return tensor.Scale(tensor.Div(tensor.Mul(g, y), x), -0.5)
		})
}

// AddScalar returns a + s.
func (tp *Tape) AddScalar(a *Var, s float64) *Var {
	return tp.unary(a, func(x *tensor.Tensor) *tensor.Tensor { return tensor.AddScalar(x, s) },
		func(g, _, _ *tensor.Tensor) *tensor.Tensor { return g.Clone() })
}

// Sum reduces one axis.
func (tp *Tape) Sum(a *Var, axis int, keepDim bool) *Var {
	out := result(tensor.Sum(a.Value, axis, keepDim))
	if !tp.needs(a) {
		return out
	}
	shape, rank := a.Shape(), a.Value.Rank()
	tp.record(func() {
		g := out.Grad
		if !keepDim {
			g = g.Unsqueeze(normAxis(axis, rank))
		}
		tp.accumulate(a, g.Expand(shape), false)
	}, out)
	return out
}

// Mean averages one axis.
func (tp *Tape) Mean(a *Var, axis int, keepDim bool) *Var {
	n := a.Value.Dim(axis)
	return tp.Scale(tp.Sum(a, axis, keepDim), 1/float64(n))
}

// SumAll reduces to a scalar.
func (tp *Tape) SumAll(a *Var) *Var {
	return tp.Sum(tp.Reshape(a, a.Value.Numel()), 0, false)
}

// MeanAll averages every element.
func (tp *Tape) MeanAll(a *Var) *Var {
	return tp.Scale(tp.SumAll(a), 1/float64(a.Value.Numel()))
}

// Max reduces one axis; the gradient goes to the maximal entries (split
// evenly between ties, as torch's amax does).
func (tp *Tape) Max(a *Var, axis int, keepDim bool) *Var {
	mk := tensor.Max(a.Value, axis, true)
	out := result(mk)
	if !keepDim {
		out = result(mk.Reshape(dropAxis(mk.Shape(), normAxis(axis, a.Value.Rank()))...))
	}
	if !tp.needs(a) {
		return out
	}
	x, shape := a.Value, a.Shape()
	tp.record(func() {
		g := out.Grad.Reshape(mk.Shape()...)
		hit := tensor.Equal(x, mk.Expand(shape))
		count := tensor.Sum(hit, axis, true)
		tp.accumulate(a, tensor.Mul(hit, tensor.Div(g, count).Expand(shape)), true)
	}, out)
	return out
}

func normAxis(axis, rank int) int {
	if axis < 0 {
		return axis + rank
	}
	return axis
}

func dropAxis(s tensor.Shape, axis int) []int {
	out := append([]int(nil), s[:axis]...)
	return append(out, s[axis+1:]...)
}

// Softmax over the last axis.
func (tp *Tape) Softmax(a *Var) *Var {
	return tp.unary(a, tensor.Softmax, func(g, _, y *tensor.Tensor) *tensor.Tensor {
		// dx = y·(g − Σ g·y)
		s := tensor.Sum(tensor.Mul(g, y), -1, true)
		return tensor.Mul(y, tensor.Sub(g, s))
	})
}

// LogSoftmax over the last axis.
func (tp *Tape) LogSoftmax(a *Var) *Var {
	return tp.unary(a, tensor.LogSoftmax, func(g, _, y *tensor.Tensor) *tensor.Tensor {
		// dx = g − softmax·Σ g
		s := tensor.Sum(g, -1, true)
		return tensor.Sub(g, tensor.Mul(tensor.Exp(y), s))
	})
}

// Cast returns a in dtype dt (a itself when it has it): the gradient
// goes back in a's dtype. Bf16 activations over float32 masters (a
// trainable embedding copy) meet here.
func (tp *Tape) Cast(a *Var, dt tensor.DType) *Var {
	if a.Value.DType() == dt {
		return a
	}
	out := result(a.Value.To(dt))
	if !tp.needs(a) {
		return out
	}
	from := a.Value.DType()
	tp.record(func() { tp.accumulate(a, out.Grad.To(from), true) }, out)
	return out
}
