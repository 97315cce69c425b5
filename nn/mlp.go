package nn

import "github.com/ftune/ftune/autograd"

// gatedMLP is down(act(gate(x))·up(x)) with SiLU or, for Gemma, the tanh
// GELU; in training with Model.MLPChunkTokens, over chunks of tokens each
// recomputed by its own backward (tiledMLP).
func (m *Model) gatedMLP(tp *autograd.Tape, b *Block, h *autograd.Var) *autograd.Var {
	shape := h.Shape()
	width := shape[len(shape)-1]
	if n := shape.Numel() / max(width, 1); tp.Training() && m.MLPChunkTokens > 0 && n > m.MLPChunkTokens {
		return m.tiledMLP(tp, b, h, n, width)
	}
	return m.denseMLP(tp, b, h)
}

// tiledMLP runs the MLP over chunks of MLPChunkTokens tokens, each a
// checkpointed region: the forward keeps only each chunk's output, and the
// backward computes one chunk's gate, up and activation again at a time,
// so a step holds intermediate_size values for one chunk instead of for
// every token (at long sequences the largest activations of a block, read
// again inside a checkpointed block's recompute too). The MLP acts on each
// token alone, so the chunks' outputs are the whole MLP's bit for bit; the
// weights' gradients are summed chunk by chunk (another order of the same
// float32 sum). The cost is one more forward of the MLP per step.
func (m *Model) tiledMLP(tp *autograd.Tape, b *Block, h *autograd.Var, n, width int) *autograd.Var {
	shape := h.Shape()
	flat := tp.Reshape(h, n, width)
	run := func(tp *autograd.Tape, in []*autograd.Var) []*autograd.Var {
		// As a block's region (Model.Forward): the recompute must use this
		// forward's adapters.
		tp.Preserve(adapterBinding{b})
		return []*autograd.Var{m.denseMLP(tp, b, in[0])}
	}
	var outs []*autograd.Var
	for s := 0; s < n; s += m.MLPChunkTokens {
		part := tp.Narrow(flat, 0, s, min(m.MLPChunkTokens, n-s))
		outs = append(outs, tp.Checkpoint(run, part)[0])
	}
	y := tp.Concat(0, outs...)
	out := append(shape[:len(shape)-1:len(shape)-1], y.Shape()[1])
	return tp.Reshape(y, out...)
}

// denseMLP is the MLP over all of h's tokens at once.
func (m *Model) denseMLP(tp *autograd.Tape, b *Block, h *autograd.Var) *autograd.Var {
	g, u := projectGateUp(tp, b, h)
	tp.Forget(h)
	var act *autograd.Var
	if m.Config.HiddenAct == gemma3Activation {
		act = tp.GeGLU(g, u)
	} else {
		act = tp.SwiGLU(g, u)
	}
	y := b.MLP.Down.Forward(tp, act)
	// The activation (intermediate_size floats a token) is computed again
	// from gate and up by the backward that reads it, the down
	// projection's LoRA, instead of being held through the forward.
	tp.Forget(act)
	return y
}
