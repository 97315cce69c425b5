package autograd

import (
	"fmt"

	"github.com/ftune/ftune/tensor"
)

// Activations the backward computes again instead of holding.
//
// A recorded output stays alive until its node's backward has run (see
// lifetimes.go). Some are held only because a later node's backward reads
// them, and are cheap to compute again from tensors held anyway: the gated
// MLP's activation silu(gate)·up (or Gemma's gelu_tanh(gate)·up), the
// MLP-width input of the down projection, is read by no backward but the
// down projection's LoRA (dA = s·(g·B)ᵀ·x) and its own node keeps gate and
// up for its backward. Holding it costs intermediate_size floats per token
// and layer, about a fifth of what a LoRA step keeps per block
// (SmolLM2-135M: 1536 of ~6900 floats; Llama-3.2-1B: 8192 of ~29700).
//
// The op that produces such a value gives it a rebuild function (SwiGLU,
// GeGLU). The model code calls Forget on it once the forward has no more
// use for it; the tape then releases its storage at once, provided every op
// recorded on it so far reads it through valueForBackward (MatMul and
// LoRALinear do: a "lazy" use). The first backward that needs the value
// computes it again, bit for bit what the forward had (the same kernel on
// the same inputs), and the tape releases that copy when the producing
// node's backward has run, as it would have released the original. Any
// other use (a view, an elementwise op, an adapter of another kind)
// captures the tensor itself, and Forget then leaves the value where it
// is: the step holds what it held before, never a freed buffer.

// rematerialize is the state of an output whose value the tape may drop
// and bring back: computed again (rebuild, Forget) or copied back from
// host memory (Offload).
type rematerialize struct {
	rebuild  func() *tensor.Tensor // nil: cannot be computed again (Offload only)
	uses     int                   // ops recorded with this Var as an input (counted by needs)
	lazyUses int                   // those that read it only through valueForBackward
	// Set by Forget or Offload: how the value comes back, its shape and
	// dtype, and the tape that releases the copy brought back.
	forgotten bool
	// adopted: the value was an unrecorded op's output (Offload of an
	// adopted value); restore registers the copy with the adopting node.
	adopted bool
	restore func() *tensor.Tensor
	shape   tensor.Shape
	dtype   tensor.DType
	tape    *Tape
}

// rebuildable marks out as computable again by rebuild (called in the
// backward, when the inputs it reads are still held).
func rebuildable(out *Var, rebuild func() *tensor.Tensor) {
	out.remat = &rematerialize{rebuild: rebuild}
}

// countUses notes each rebuildable input of an op (needs calls it).
func countRematUses(in []*Var) {
	for _, v := range in {
		if v != nil && v.remat != nil {
			v.remat.uses++
		}
	}
}

// readsLazily tells the tape that the op being recorded reads x in its
// backward only through valueForBackward (never a tensor captured in the
// forward), so x may be forgotten.
func readsLazily(x *Var) {
	if x != nil && x.remat != nil {
		x.remat.lazyUses++
	}
}

// Forget tells the tape that the forward will not read v again. When v
// can be computed again and every recorded use of it reads it lazily, its
// storage goes back to the backend now (on the CPU, to Go's collector:
// nothing references it any more) and the first backward that needs it
// computes it again. Otherwise, or on a tape that records nothing, Forget
// does nothing. v.Value is nil once forgotten: the caller must not use v
// in the forward again.
func (tp *Tape) Forget(vs ...*Var) {
	if !tp.Training() || tp.region != nil {
		return
	}
	for _, v := range vs {
		if v.remat == nil || v.remat.rebuild == nil || !tp.mayDrop(v) {
			continue
		}
		tp.drop(v, v.remat.rebuild, "forgotten "+v.Name)
	}
}

// mayDrop reports whether v's value can leave: every recorded use of it
// reads it lazily, it has not left already, and its storage is v's alone
// (no view of it, not pinned by Keep or as a leaf).
func (tp *Tape) mayDrop(v *Var) bool {
	r := v.remat
	if r == nil || r.forgotten || r.uses == 0 || r.uses != r.lazyUses || v.Value == nil || !v.requiresGrad {
		return false
	}
	st := v.Value.Storage()
	if tp.life.pinned[st] {
		return false
	}
	n, ok := tp.life.uses[st]
	return !ok || n == 1
}

// drop releases v's storage (when the tape tracks it; otherwise it is the
// collector's) and leaves restore to bring the value back.
func (tp *Tape) drop(v *Var, restore func() *tensor.Tensor, what string) {
	r := v.remat
	st := v.Value.Storage()
	if _, ok := tp.life.uses[st]; ok {
		delete(tp.life.uses, st)
		tp.releaseNow(v.Value, what)
	}
	r.forgotten, r.restore, r.shape, r.dtype, r.tape = true, restore, v.Value.Shape().Clone(), v.Value.DType(), tp
	v.Value = nil
}

// valueForBackward is v's value for a backward that reads it, computed
// again if v was forgotten. The copy is registered with the tape so that
// it is released with the producing node's outputs.
func (v *Var) valueForBackward() *tensor.Tensor {
	if v.Value != nil {
		return v.Value
	}
	r := v.remat
	if r == nil || !r.forgotten {
		panic(&tensor.Error{Err: fmt.Errorf("autograd: %s has no value", v.Name)})
	}
	v.Value = r.restore()
	if !r.adopted {
		r.tape.countUses([]*Var{v})
	}
	return v.Value
}

// shape is v's shape, also while v is forgotten.
func (v *Var) shape() tensor.Shape {
	if v.Value == nil && v.remat != nil && v.remat.forgotten {
		return v.remat.shape
	}
	return v.Value.Shape()
}

// dtype is v's dtype, also while v is forgotten.
func (v *Var) dtype() tensor.DType {
	if v.Value == nil && v.remat != nil && v.remat.forgotten {
		return v.remat.dtype
	}
	return v.Value.DType()
}
