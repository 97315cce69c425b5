package autograd

import "github.com/ftune/ftune/tensor"

// Checkpoint runs fn without recording its internals and records one node
// that re-runs fn on a private tape during the backward: the activations
// inside fn are never kept, at the cost of a second forward (gradient
// checkpointing, per decoder block). fn must reach the parameters it uses
// through closure; their gradients accumulate as usual.
//
// The first forward runs on a tape that records nothing but is a training
// tape all the same (Training is true: dropout is applied), so the loss is
// the one training computes. fn may draw random numbers or read other
// mutable state (dropout streams, which adapter a layer routes to) provided
// it names that state with Preserve before using it: the recompute then
// sees the state as the first forward did (the same dropout masks, as
// torch.utils.checkpoint's preserve_rng_state), and afterwards the state is
// put back where the rest of the step had left it. Apart from such state fn
// must be deterministic.
func (tp *Tape) Checkpoint(fn func(tp *Tape, in []*Var) []*Var, in ...*Var) []*Var {
	if !tp.Training() {
		return fn(tp, in) // inference
	}
	if tp.region != nil {
		// Already inside a region's first forward (a nested checkpoint):
		// the outer region recomputes this one too. What fn made and
		// read, other than its outputs, is dead when it returns (nothing
		// recorded it), and is released now rather than with the outer
		// region: a model that splits a block into nested regions (the
		// MLP over chunks of tokens) then holds one region's tensors at a
		// time in its first forward too.
		mark := tensor.BornMark()
		outs := fn(tp, in)
		if tp.ReleaseActivations {
			tp.releaseNested(mark, outs)
		}
		return outs
	}
	// The first forward's tape releases as this one does (nested regions,
	// releaseNested); it records nothing.
	first := &Tape{region: &region{mark: tensor.BornMark()}, ReleaseActivations: tp.ReleaseActivations}
	outs := fn(first, in)
	saved := first.region.saved
	if tp.ReleaseActivations {
		tp.releaseRegion(first, outs)
	}
	// An output may be an input passed through (or a view of one); a leaf
	// input's storage must then outlive the node (ReleaseActivations).
	tp.pinLeaves(in)
	// An input no recorded node made (the frozen embeddings' lookup) is
	// released after this node's recompute, its last reader.
	tp.adopt(in)
	if tp.firstCheckpoint == 0 {
		tp.firstCheckpoint = len(tp.nodes) + 1 // see leafDoneAt
	}
	res := make([]*Var, len(outs))
	for i, o := range outs {
		res[i] = result(o.Value)
		tracked(res[i]) // the next region's saved input: Offload may move it
	}
	// The node reads its inputs in the backward only, through
	// valueForBackward: a lazy use (an input may be offloaded).
	for _, v := range in {
		if v != nil && v.remat != nil {
			v.remat.uses++
			v.remat.lazyUses++
		}
	}
	tp.record(func() {
		sub := NewTape()
		// The recomputed activations are released as the private replay
		// passes them; the detached inputs are leaves there, so pinned.
		sub.ReleaseActivations = tp.ReleaseActivations
		detached := make([]*Var, len(in))
		for i, v := range in {
			detached[i] = &Var{Value: v.valueForBackward(), Name: v.Name, requiresGrad: v.requiresGrad, leaf: true}
		}
		again := replayState(saved, func() []*Var { return fn(sub, detached) })
		// Seed the recomputed outputs with the incoming gradients and replay
		// the private tape (a NewTape: RetainGrads off); a sum of ⟨out, grad⟩ would do the same with an
		// extra op per output.
		for i, o := range again {
			if res[i].Grad != nil && o.requiresGrad {
				sub.accumulate(o, res[i].Grad, false)
			}
		}
		sub.replay()
		tp.life.released += sub.life.released
		tp.life.releasedBytes += sub.life.releasedBytes
		for i, v := range in {
			tp.accumulate(v, detached[i].Grad, true)
		}
	}, res...)
	return res
}

// Stateful is mutable state a checkpointed region reads or advances, such
// as a random stream, that its recompute must find as the first forward
// did. The state's owner implements it; autograd only calls it.
type Stateful interface {
	// Snapshot returns a function that puts the state back as it is now.
	Snapshot() (restore func())
}

// region is what a checkpointed region's first forward collects: each
// Stateful it used, with a snapshot taken just before that use, and the
// activations its ops read (to release when it ends).
type region struct {
	saved []preserved
	mark  uint64                            // tensor.BornMark when the region began
	read  map[tensor.Storage]*tensor.Tensor // storages of op inputs made inside the region
}

// note remembers the op inputs that are activations made inside the
// region (op outputs allocated after it began; leaves never).
func (r *region) note(in []*Var) {
	for _, v := range in {
		if v == nil || v.leaf || v.Value == nil || tensor.Born(v.Value) <= r.mark || !tensor.CanRelease(v.Value) {
			continue
		}
		if r.read == nil {
			r.read = map[tensor.Storage]*tensor.Tensor{}
		}
		r.read[v.Value.Storage()] = v.Value
	}
}

// releaseRegion gives back, when a region's first forward has returned,
// every activation it made and read, other than the storages of its
// outputs and what it kept (Keep): the first forward recorded no backward,
// so nothing reads them again (the recompute makes its own), and on a GPU
// they would otherwise wait for Go's collector, about a whole block of
// activations per checkpointed block.
func (tp *Tape) releaseRegion(first *Tape, outs []*Var) {
	keep := map[tensor.Storage]bool{}
	for _, o := range outs {
		if o != nil && o.Value != nil {
			keep[o.Value.Storage()] = true
		}
	}
	for st, t := range first.region.read {
		if keep[st] || first.life.pinned[st] {
			continue
		}
		tp.releaseNow(t, "a checkpointed region's activation")
	}
}

// releaseNested releases, on a region's first-forward tape, what a nested
// region made after mark and the ops read, but its outputs, and forgets
// them: the outer region's end must not release them twice.
func (tp *Tape) releaseNested(mark uint64, outs []*Var) {
	keep := map[tensor.Storage]bool{}
	for _, o := range outs {
		if o != nil && o.Value != nil {
			keep[o.Value.Storage()] = true
		}
	}
	for st, t := range tp.region.read {
		if tensor.Born(t) <= mark || keep[st] || tp.life.pinned[st] {
			continue
		}
		delete(tp.region.read, st)
		tp.releaseNow(t, "a nested checkpointed region's activation")
	}
}

type preserved struct {
	state   Stateful
	restore func()
}

// Training reports whether ops run to train: a recording tape or a
// checkpointed region's first forward (which records nothing but must
// compute what training computes, dropout included). A nil tape and an
// inference tape (NewInference) are inference.
func (tp *Tape) Training() bool { return tp != nil && tp.inference == nil }

// Preserve declares that the caller is about to read or advance s. Inside
// a checkpointed region's first forward the tape snapshots s, so that the
// recompute during the backward starts from the same state; elsewhere it
// does nothing. Call it before each use: a second call in the same region
// is harmless (the earliest snapshot wins).
func (tp *Tape) Preserve(s Stateful) {
	if tp == nil || tp.region == nil {
		return
	}
	tp.region.saved = append(tp.region.saved, preserved{s, s.Snapshot()})
}

// replayState runs fn with every preserved state back as the region's
// first forward found it, then puts each state back as it was before the
// recompute: a dropout stream stays where the forward (and anything since,
// such as a data-parallel worker skipping other workers' rows) left it.
func replayState(saved []preserved, fn func() []*Var) []*Var {
	now := make([]func(), len(saved))
	for i, p := range saved {
		now[i] = p.state.Snapshot()
	}
	// Backwards, so that a state preserved twice ends at its earliest
	// snapshot.
	for i := len(saved) - 1; i >= 0; i-- {
		saved[i].restore()
	}
	defer func() {
		for _, put := range now {
			put()
		}
	}()
	return fn()
}
