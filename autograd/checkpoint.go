package autograd

// Checkpoint runs fn without recording its internals and records one node
// that re-runs fn on a private tape during the backward: the activations
// inside fn are never kept, at the cost of a second forward (gradient
// checkpointing, per decoder block). fn must be deterministic (no dropout
// drawn from a shared stream) and must reach the parameters it uses through
// closure; their gradients accumulate as usual.
func (tp *Tape) Checkpoint(fn func(tp *Tape, in []*Var) []*Var, in ...*Var) []*Var {
	outs := fn(nil, in)
	if tp == nil {
		return outs
	}
	// An output may be an input passed through (or a view of one); a leaf
	// input's storage must then outlive the node (ReleaseActivations).
	tp.pinLeaves(in)
	if tp.firstCheckpoint == 0 {
		tp.firstCheckpoint = len(tp.nodes) + 1 // see leafDoneAt
	}
	res := make([]*Var, len(outs))
	for i, o := range outs {
		res[i] = result(o.Value)
	}
	tp.record(func() {
		sub := NewTape()
		// The recomputed activations are released as the private replay
		// passes them; the detached inputs are leaves there, so pinned.
		sub.ReleaseActivations = tp.ReleaseActivations
		detached := make([]*Var, len(in))
		for i, v := range in {
			detached[i] = &Var{Value: v.Value, Name: v.Name, requiresGrad: v.requiresGrad, leaf: true}
		}
		again := fn(sub, detached)
		// Seed the recomputed outputs with the incoming gradients and replay
		// the private tape (a NewTape: RetainGrads off); a sum of ⟨out, grad⟩ would do the same with an
		// extra op per output.
		for i, o := range again {
			if res[i].Grad != nil && o.requiresGrad {
				accumulate(o, res[i].Grad, false)
			}
		}
		sub.replay()
		tp.life.released += sub.life.released
		tp.life.releasedBytes += sub.life.releasedBytes
		for i, v := range in {
			accumulate(v, detached[i].Grad, true)
		}
	}, res...)
	return res
}
