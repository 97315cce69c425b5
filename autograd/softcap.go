package autograd

import "github.com/ftune/ftune/tensor"

// Softcap returns c·tanh(x/c) (Gemma 2's final-logit soft-capping). The
// backward reads 1 − tanh² from the output, so x is not kept.
func (tp *Tape) Softcap(x *Var, c float64) *Var {
	out := result(tensor.Softcap(x.Value, c))
	if !tp.needs(x) {
		return out
	}
	tp.record(func() {
		// out.Grad is scaled in place when the tape hands it off (nothing
		// else reads it); otherwise a copy is.
		g := out.Grad
		if !tp.handOff() || !g.IsContiguous() {
			g = g.Clone()
		}
		tensor.SoftcapBackwardInPlace(g, out.Value, c)
		tp.accumulate(x, g, true)
	}, out)
	return out
}
