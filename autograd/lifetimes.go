package autograd

import (
	"fmt"

	"github.com/ftune/ftune/tensor"
)

// lifetimes is the tape's bookkeeping for Tape.ReleaseActivations: which
// activation storages the tape may release, and how many recorded outputs
// still share each one.
//
// Why releasing a node's outputs after its backward is safe: a node's
// backward closure captures its inputs, its outputs and tensors its
// forward made for it; the inputs are outputs of earlier nodes, or leaves.
// The backward runs nodes in reverse, so once node i's backward has run,
// the only closures left to run belong to nodes recorded before i, which
// were created before node i's outputs existed and so cannot hold them —
// unless a storage is shared: views (Reshape, Narrow, Permute…) give
// several outputs one storage, and an output can be a view of a leaf (a
// parameter, a frozen weight, an input). Hence the rules:
//
//   - only storages of recorded outputs that were allocated after the tape
//     began (tensor.Born > the tape's mark) are candidates: parameters,
//     inputs and anything older never are;
//   - each candidate storage counts the recorded outputs sharing it, and is
//     released when the last of them has had its backward run;
//   - the storage of every leaf an op was called with (Param, Const,
//     Frozen: parameters, frozen weights, inputs, detached values) is
//     pinned, so an output that is a view of one is never released;
//   - the loss given to Backward and every Var passed to Keep are pinned:
//     the caller may still read them.
//
// Gradients are released too, as replay drops them (an output's gradient
// once its node's backward has run). A backward may hand its output's
// gradient, or a view of it, to an input without a copy (Tape.handOff),
// so a gradient storage counts the Vars whose Grad holds it (holdGrad) and
// is released when the last of them drops it (dropGrad); a parameter's
// gradient, or a storage a parameter's gradient took over, never is. A
// fresh gradient accumulate adds into an existing one (a second consumer's
// share) is released once added (releaseSpent).
//
// Outputs of ops that recorded nothing (a frozen embedding lookup) are no
// node's: the first recorded op that reads one adopts it, and it is
// released once the backward has passed that op (adopt). A node's backward
// releases its own temporaries and what its forward saved for it alone
// (releaseSaved).
type lifetimes struct {
	mark   uint64 // tensor.BornMark when the tape began
	marked bool   // mark is set (a zero-value Tape sets it at its first record)
	uses   map[tensor.Storage]int
	pinned map[tensor.Storage]bool
	// grads counts the Vars whose Grad holds each gradient storage;
	// gradKept marks those a parameter's gradient holds.
	grads    map[tensor.Storage]int
	gradKept map[tensor.Storage]bool

	// adopted are the storages of outputs of unrecorded ops that recorded
	// ops read (adopt), and afterNode the node after whose backward each
	// is released.
	adopted   map[tensor.Storage]bool
	afterNode map[int][]*tensor.Tensor

	released      int   // storages released
	releasedBytes int64 // their element bytes
}

// adopt takes charge of the inputs of an op about to be recorded that no
// recorded node produced and no leaf holds: outputs of ops that recorded
// nothing, such as a frozen embedding table's lookup or the norm of that
// lookup, made after the tape began. The first node recorded with one as
// input is the last whose backward can read it (the backward runs nodes
// in reverse), so its storage is released once the backward has passed
// that node; before, it waited for Go's collector (on a GPU, two
// [tokens, hidden] buffers a step). A node recorded inside the op before
// its own has a lower index: releasing after it is later still.
func (tp *Tape) adopt(in []*Var) {
	if !tp.ReleaseActivations {
		return
	}
	for _, v := range in {
		if v == nil || v.leaf || v.requiresGrad || v.Value == nil || tensor.Born(v.Value) <= tp.life.mark || !tensor.CanRelease(v.Value) {
			continue
		}
		st := v.Value.Storage()
		if _, recorded := tp.life.uses[st]; recorded || tp.life.adopted[st] {
			continue
		}
		if tp.life.adopted == nil {
			tp.life.adopted, tp.life.afterNode = map[tensor.Storage]bool{}, map[int][]*tensor.Tensor{}
		}
		tp.life.adopted[st] = true
		i := len(tp.nodes)
		tp.life.afterNode[i] = append(tp.life.afterNode[i], v.Value)
	}
}

// releaseAdopted releases what adopt attached to node i, once its
// backward has run (or was skipped), unless the caller kept it.
func (tp *Tape) releaseAdopted(i int) {
	for _, t := range tp.life.afterNode[i] {
		st := t.Storage()
		delete(tp.life.adopted, st)
		if tp.life.pinned[st] || tp.life.uses[st] > 0 {
			continue
		}
		tp.releaseNow(t, "an unrecorded op's output after its last reader")
	}
	delete(tp.life.afterNode, i)
}

// Keep pins the storages of vs (and of every view sharing them): with
// ReleaseActivations, tensors the caller reads after Backward — returned
// logits, hidden states — must be kept. The loss is kept by Backward.
func (tp *Tape) Keep(vs ...*Var) {
	if tp == nil {
		return
	}
	for _, v := range vs {
		if v != nil && v.Value != nil {
			tp.pin(v.Value.Storage())
		}
	}
}

func (tp *Tape) pin(st tensor.Storage) {
	if tp.life.pinned == nil {
		tp.life.pinned = map[tensor.Storage]bool{}
	}
	tp.life.pinned[st] = true
}

// pinLeaves pins the storages of the leaves among an op's inputs.
func (tp *Tape) pinLeaves(in []*Var) {
	if !tp.ReleaseActivations {
		return
	}
	for _, v := range in {
		if v != nil && v.leaf && v.Value != nil {
			tp.pin(v.Value.Storage())
		}
	}
}

// countUses registers a node's outputs: one use of each candidate storage.
func (tp *Tape) countUses(outs []*Var) {
	if !tp.life.marked {
		// A zero-value Tape: everything allocated so far (including this
		// node's outputs) is older than the mark and never released.
		tp.life.mark, tp.life.marked = tensor.BornMark(), true
	}
	if !tp.ReleaseActivations {
		return
	}
	for _, o := range outs {
		if o.Value == nil || tensor.Born(o.Value) <= tp.life.mark || !tensor.CanRelease(o.Value) {
			continue
		}
		if tp.life.uses == nil {
			tp.life.uses = map[tensor.Storage]int{}
		}
		tp.life.uses[o.Value.Storage()]++
	}
}

// releaseDead drops a node's outputs' uses after its backward ran (or was
// skipped) and releases every storage no recorded output needs any more.
func (tp *Tape) releaseDead(outs []*Var) {
	if len(tp.life.uses) == 0 {
		return
	}
	for _, o := range outs {
		if o.Value == nil {
			continue
		}
		st := o.Value.Storage()
		if !unuse(tp.life.uses, st) || tp.life.pinned[st] {
			continue
		}
		tp.releaseNow(o.Value, o.Name+" after its last use")
	}
}

// unuse drops one count of st and reports whether it was the last one.
func unuse(counts map[tensor.Storage]int, st tensor.Storage) bool {
	n, ok := counts[st]
	if !ok {
		return false
	}
	if n > 1 {
		counts[st] = n - 1
		return false
	}
	delete(counts, st)
	return true
}

// releaseNow gives t's storage back to its backend and counts it in
// Released.
func (tp *Tape) releaseNow(t *tensor.Tensor, what string) {
	if err := tensor.Release(t); err != nil {
		panic(&tensor.Error{Err: fmt.Errorf("autograd: releasing %s: %w", what, err)})
	}
	st := t.Storage()
	tp.life.released++
	tp.life.releasedBytes += int64(st.Len()) * int64(st.DType().Size())
}

// holdGrad registers v.Grad, just set, as held by v.
func (tp *Tape) holdGrad(v *Var) {
	if !tp.ReleaseActivations || !tensor.CanRelease(v.Grad) {
		return
	}
	st := v.Grad.Storage()
	if v.leaf {
		if tp.life.gradKept == nil {
			tp.life.gradKept = map[tensor.Storage]bool{}
		}
		tp.life.gradKept[st] = true
		return
	}
	if tensor.Born(v.Grad) <= tp.life.mark {
		return
	}
	if tp.life.grads == nil {
		tp.life.grads = map[tensor.Storage]int{}
	}
	tp.life.grads[st]++
}

// dropGrad clears o.Grad (replay, once o's node has run) and releases its
// storage when no other Var's Grad holds it.
func (tp *Tape) dropGrad(o *Var) {
	g := o.Grad
	o.Grad = nil
	if g == nil || len(tp.life.grads) == 0 {
		return
	}
	st := g.Storage()
	if !unuse(tp.life.grads, st) || tp.life.gradKept[st] {
		return
	}
	tp.releaseNow(g, "the gradient of "+o.Name)
}

// releaseSpent releases g, a fresh gradient accumulate has just added
// into an existing one, unless its storage belongs to anything else the
// tape knows of: a Var's gradient, a parameter's, an activation, a kept
// tensor, or anything made before the tape.
func (tp *Tape) releaseSpent(g *tensor.Tensor) {
	if !tp.ReleaseActivations || !tensor.CanRelease(g) || tensor.Born(g) <= tp.life.mark {
		return
	}
	st := g.Storage()
	if tp.life.grads[st] > 0 || tp.life.gradKept[st] || tp.life.uses[st] > 0 || tp.life.pinned[st] {
		return
	}
	tp.releaseNow(g, "an added gradient")
}

// ReleaseAfterBackward hands the tape tensors its ops read that no op
// made and that nothing reads after the backward: a pass's constants, such
// as the RoPE tables for the batch's positions or the shifted labels. With
// ReleaseActivations, Backward gives them back once it has run every node
// (a checkpointed block's recompute reads them until then); otherwise, or
// without a backward, they wait for the collector as before. On a GPU a
// constant left to the collector makes the next step's request of its size
// miss the caching allocator's cache. An inference tape gives them back
// when its pass ends (ReleasePass). A checkpointed region's first-forward
// tape never runs a backward and takes none.
func (tp *Tape) ReleaseAfterBackward(ts ...*tensor.Tensor) {
	if tp == nil || tp.region != nil || !(tp.ReleaseActivations || tp.inference != nil) {
		return
	}
	for _, t := range ts {
		if t != nil && tensor.CanRelease(t) {
			tp.afterBackward = append(tp.afterBackward, t)
		}
	}
}

// releaseAfterBackward gives back what ReleaseAfterBackward collected, each
// storage once.
func (tp *Tape) releaseAfterBackward() {
	seen := map[tensor.Storage]bool{}
	for _, t := range tp.afterBackward {
		if st := t.Storage(); !seen[st] {
			seen[st] = true
			tp.releaseNow(t, "a pass's constant")
		}
	}
	tp.afterBackward = nil
}

// ReleaseStats are the storages ReleaseActivations gave back so far.
type ReleaseStats struct {
	Storages int
	Bytes    int64
}

// Released reports what ReleaseActivations has released on this tape.
func (tp *Tape) Released() ReleaseStats {
	if tp == nil {
		return ReleaseStats{}
	}
	return ReleaseStats{Storages: tp.life.released, Bytes: tp.life.releasedBytes}
}
