package autograd

import (
	"fmt"

	"github.com/ftune/ftune/tensor"
)

// Var is a tensor in a differentiable computation.
type Var struct {
	Value *tensor.Tensor
	// Grad holds d(loss)/d(Value) after Backward; for parameters it
	// accumulates across Backward calls until ZeroGrad.
	Grad         *tensor.Tensor
	Name         string
	requiresGrad bool
	leaf         bool
	remat        *rematerialize // set when the value can be computed again (forget.go)
	// gradKnown: every element of Grad is gradValue, known on the host
	// without reading the tensor (the loss's seed and its scaled copy:
	// gradScalar).
	gradKnown bool
	gradValue float64
}

// Param wraps a trainable tensor.
func Param(t *tensor.Tensor, name string) *Var {
	return &Var{Value: t, Name: name, requiresGrad: true, leaf: true}
}

// Const wraps a tensor that needs no gradient (inputs, frozen weights).
func Const(t *tensor.Tensor) *Var { return &Var{Value: t, leaf: true} }

// Frozen wraps a named weight that is not trained: no gradient buffer is
// ever allocated for it.
func Frozen(t *tensor.Tensor, name string) *Var { return &Var{Value: t, Name: name, leaf: true} }

// RequiresGrad reports whether gradients flow to v.
func (v *Var) RequiresGrad() bool { return v.requiresGrad }

// SetRequiresGrad freezes (false) or unfreezes a leaf; freezing drops its
// gradient buffer.
func (v *Var) SetRequiresGrad(on bool) {
	v.requiresGrad = on
	if !on {
		v.Grad = nil
	}
}

// ZeroGrad drops the accumulated gradient.
func (v *Var) ZeroGrad() { v.Grad = nil }

// Shape is v's shape (also while a forgotten value waits to be computed
// again: see Tape.Forget).
func (v *Var) Shape() tensor.Shape { return v.shape() }

func (v *Var) String() string {
	return fmt.Sprintf("Var(%s %v grad=%v)", v.Name, v.Value, v.requiresGrad)
}

type node struct {
	outs     []*Var
	backward func()
}

// Tape records ops for the backward pass. The zero value is ready; a nil
// *Tape records nothing (inference).
type Tape struct {
	nodes []node
	// RetainGrads keeps the gradients of intermediate Vars after Backward
	// (for inspection and tests); by default they are freed as soon as the
	// node that consumed them has run.
	RetainGrads bool
	// ReleaseActivations gives each activation's storage, and each
	// intermediate gradient's, back to its backend (tensor.Release) as
	// soon as the backward has passed its last use, instead of leaving
	// device memory to Go's collector (see lifetimes.go for what is
	// released and what never is). Tensors the caller reads after
	// Backward, other than the loss and the parameters' gradients, must be
	// named with Keep. No effect on backends without early release (the
	// CPU).
	ReleaseActivations bool
	life               lifetimes
	// LeafDone, set before the forward, is called during Backward once for
	// each trainable leaf the recorded ops used, as soon as its gradient
	// is complete (data-parallel training all-reduces it while the rest of
	// the backward runs): see leafDoneAt.
	LeafDone func(*Var)
	leafUses []leafUse // trainable leaves in order of first use, when LeafDone is set
	seen     map[*Var]bool
	// firstCheckpoint is 1 + the index of the first Checkpoint node (0:
	// none): the ops inside a checkpointed function are not on this tape.
	firstCheckpoint int
	// region is set on the tape a checkpointed region's first forward runs
	// on: it records nothing and collects the state to replay (Preserve).
	region *region
	// offloaded holds the values Offload moved to host memory, in the
	// forward's order, until the backward restores them.
	offloaded []*tensor.Offloaded
	// afterBackward: a pass's constants (ReleaseAfterBackward), given back
	// when Backward has run every node (on an inference tape, when the
	// pass ends: ReleasePass).
	afterBackward []*tensor.Tensor
	// inference is set on an inference tape (NewInference): it records
	// nothing and collects what its ops read.
	inference *inference
}

// leafUse is a trainable leaf and the index of the first node recorded
// after an op that may use it was seen (needs is called before record).
type leafUse struct {
	v    *Var
	node int
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{life: lifetimes{mark: tensor.BornMark(), marked: true}} }

// Len is the number of recorded nodes.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.nodes)
}

// needs reports whether an op on these inputs must be recorded.
func (tp *Tape) needs(in ...*Var) bool {
	if tp == nil {
		return false
	}
	if tp.region != nil {
		tp.region.note(in)
		return false
	}
	if tp.inference != nil {
		tp.noteReads(in)
		return false
	}
	tp.pinLeaves(in)
	countRematUses(in)
	if tp.LeafDone != nil {
		tp.noteLeaves(in)
	}
	for _, v := range in {
		if v != nil && v.requiresGrad {
			tp.adopt(in) // the op records a node
			return true
		}
	}
	return false
}

// noteLeaves remembers where each trainable leaf is first used. Every op
// calls needs with every input it will accumulate a gradient into, before
// recording its node, so len(tp.nodes) is at most the index of the first
// node that can add to the leaf's gradient.
func (tp *Tape) noteLeaves(in []*Var) {
	for _, v := range in {
		if v != nil && v.leaf && v.requiresGrad && !tp.seen[v] {
			if tp.seen == nil {
				tp.seen = map[*Var]bool{}
			}
			tp.seen[v] = true
			tp.leafUses = append(tp.leafUses, leafUse{v, len(tp.nodes)})
		}
	}
}

// leafDoneAt is, per node index, the leaves whose gradient is complete once
// replay has run that node: replay goes from the last node to the first,
// so after the first node that used a leaf nothing adds to it. A
// Checkpoint node re-runs ops this tape never saw, which may use any
// leaf: leaves first used after the first Checkpoint node are complete
// only after it (leaves used only inside checkpointed functions are not
// reported at all).
func (tp *Tape) leafDoneAt() map[int][]*Var {
	at := map[int][]*Var{}
	for _, u := range tp.leafUses {
		n := min(u.node, len(tp.nodes)-1)
		if tp.firstCheckpoint > 0 {
			n = min(n, tp.firstCheckpoint-1)
		}
		at[n] = append(at[n], u.v)
	}
	return at
}

// record registers outs as produced by an op with the given backward and
// marks them as requiring grad.
func (tp *Tape) record(backward func(), outs ...*Var) {
	for _, o := range outs {
		o.requiresGrad = true
	}
	tp.countUses(outs)
	tp.nodes = append(tp.nodes, node{outs: outs, backward: backward})
}

// handOff reports whether a node's backward may give its output's gradient
// tensor (or a view of it) to one input without a copy: the tape drops
// out.Grad right after the node runs unless RetainGrads keeps it, and
// accumulate never leaves a gradient shared, so the input then owns it.
func (tp *Tape) handOff() bool { return tp != nil && !tp.RetainGrads }

// result wraps an op output; it requires grad when the op was recorded.
func result(t *tensor.Tensor) *Var { return &Var{Value: t} }

// accumulate adds g into v.Grad. fresh says g is owned by the caller and may
// become v.Grad itself without a copy; the caller does not use a fresh g
// after the call (with ReleaseActivations, one added into an existing
// gradient is released).
func (tp *Tape) accumulate(v *Var, g *tensor.Tensor, fresh bool) {
	if v == nil || !v.requiresGrad || g == nil {
		return
	}
	v.gradKnown = false
	if !g.Shape().Equal(v.shape()) {
		panic(&tensor.Error{Err: fmt.Errorf("autograd: gradient %v for %s of shape %v", g.Shape(), v.Name, v.shape())})
	}
	if dt := v.dtype(); g.DType() != dt && dt != tensor.BF16 {
		wide := g.To(dt)
		if fresh {
			// Dead once widened: a bf16 product for a float32 master
			// (LoRA's dA), which the collector would otherwise free, at
			// every adapter and checkpointed chunk.
			tp.releaseSpent(g)
		}
		g, fresh = wide, true
	}
	if v.Grad == nil {
		switch {
		case fresh && g.IsContiguous():
			v.Grad = g
		default:
			v.Grad = g.Clone()
		}
		tp.holdGrad(v)
		return
	}
	tensor.AddInPlace(v.Grad, g)
	if fresh {
		// The caller's tensor is dead once added (fresh: nothing else
		// holds it), a second consumer's share of a gradient.
		tp.releaseSpent(g)
	}
}

// gradScalar returns a scalar's gradient, from the host when it is known
// there (the loss's seed, scaled), else read from the tensor: on a GPU a
// read waits for all the work queued before it, which in a backward's first
// node leaves the GPU idle while the host queues the rest.
func gradScalar(v *Var) float64 {
	if v.gradKnown {
		return v.gradValue
	}
	return v.Grad.Item()
}

// Backward computes d(loss)/d(every Var recorded on the tape) for a scalar
// loss, accumulating into the Grad of trainable leaves. The tape is consumed.
func (tp *Tape) Backward(loss *Var) error {
	if tp == nil {
		return fmt.Errorf("autograd: Backward on a nil (inference) tape")
	}
	if tp.region != nil {
		return fmt.Errorf("autograd: Backward on a checkpointed region's first-forward tape (it records nothing)")
	}
	if tp.inference != nil {
		return fmt.Errorf("autograd: Backward on an inference tape (it records nothing)")
	}
	if loss.Value.Numel() != 1 {
		return fmt.Errorf("autograd: Backward from a non-scalar of shape %v", loss.Shape())
	}
	if !loss.requiresGrad {
		return fmt.Errorf("autograd: loss does not depend on any trainable parameter")
	}
	tp.Keep(loss)
	return tensor.Catch(func() {
		seed := tensor.Full(loss.Value.Backend(), loss.Value.DType(), 1, loss.Shape()...)
		tp.accumulate(loss, seed, true)
		loss.gradKnown, loss.gradValue = true, 1
		tp.replay()
		tp.releaseAfterBackward()
	})
}

// replay runs the recorded backwards in reverse, skipping nodes whose
// outputs received no gradient, and drops each node (and, unless
// RetainGrads, its outputs' gradients) once it has run, so memory is
// released as the backward proceeds. The tape is empty afterwards.
func (tp *Tape) replay() {
	var done map[int][]*Var
	if tp.LeafDone != nil {
		done = tp.leafDoneAt()
		tp.leafUses, tp.seen = nil, nil
	}
	for i := len(tp.nodes) - 1; i >= 0; i-- {
		n := tp.nodes[i]
		live := false
		for _, o := range n.outs {
			live = live || o.Grad != nil
		}
		if live {
			n.backward()
		}
		if !tp.RetainGrads {
			for _, o := range n.outs {
				tp.dropGrad(o)
			}
		}
		tp.releaseDead(n.outs)
		tp.releaseAdopted(i)
		tp.nodes[i] = node{}
		for _, v := range done[i] {
			tp.LeafDone(v)
		}
	}
	tp.nodes = tp.nodes[:0]
	tp.firstCheckpoint = 0
}
