package nn

import (
	"github.com/ftune/ftune/autograd"
)

// Adapter adds a trainable path to a frozen Linear (LoRA lives in package
// lora and plugs in here without nn knowing it).
type Adapter interface {
	// Forward returns the adapter's contribution for input x, or, when it
	// replaces the whole layer (a fused LoRA node), the full output with
	// replaced = true.
	Forward(tp *autograd.Tape, l *Linear, x *autograd.Var) (y *autograd.Var, replaced bool)
}

// Linear is y = x·Wᵀ + b with W [out,in] in Hugging Face layout.
type Linear struct {
	Name    string // module path, e.g. model.layers.0.self_attn.q_proj
	Weight  *autograd.Var
	Bias    *autograd.Var // nil without bias
	Adapter Adapter       // nil = plain linear
}

// In and Out are the layer's fan-in and fan-out.
func (l *Linear) In() int  { return l.Weight.Value.Dim(1) }
func (l *Linear) Out() int { return l.Weight.Value.Dim(0) }

// Base computes the frozen path only.
func (l *Linear) Base(tp *autograd.Tape, x *autograd.Var) *autograd.Var {
	return tp.Linear(x, l.Weight, l.Bias)
}

// Forward computes the layer with its adapter, if any.
func (l *Linear) Forward(tp *autograd.Tape, x *autograd.Var) *autograd.Var {
	if l.Adapter == nil {
		return l.Base(tp, x)
	}
	y, replaced := l.Adapter.Forward(tp, l, x)
	if replaced {
		return y
	}
	return tp.Add(l.Base(tp, x), y)
}
