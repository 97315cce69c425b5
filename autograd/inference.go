package autograd

import (
	"fmt"

	"github.com/ftune/ftune/tensor"
)

// An inference tape records nothing, as a nil tape does, but remembers
// the activations its ops read, so that a forward without a backward
// (validation, a DPO reference, evaluation) can give them back to their
// backend (a GPU's caching allocator, the CPU pool) instead of leaving
// them to Go's collector.
//
// A forward knows no activation's last reader while it runs; its caller
// knows points where everything read so far is dead except a few values:
// after a decoder block, only the block's output is read again. At such a
// point ReleaseRead(keep...) releases every storage the pass's ops have
// read since the tape began, except keep's (and every view sharing them).
// A value not yet read by any op (the block's output, the pass's logits)
// is never a candidate, and neither is anything an op read that existed
// before the tape (weights, inputs, caches) or any leaf (Param, Const,
// Frozen: what the caller wrapped and may use again) or a storage Keep
// pinned. ReleasePass ends a pass: ReleaseRead, and the pass's constants
// (ReleaseAfterBackward) too.
//
// A release before a value's last use cannot go unnoticed: a released
// storage lets go of its memory, and its next use fails.
type inference struct {
	read []*tensor.Tensor // one tensor per storage read, in the order first read
	seen map[tensor.Storage]bool
}

// NewInference returns a tape for a forward without a backward that
// releases what the forward read at the points its caller names
// (ReleaseRead, ReleasePass). Ops on it compute what they compute on a nil
// tape: Training reports false, nothing is recorded or checkpointed, and
// Backward refuses it.
func NewInference() *Tape {
	tp := NewTape()
	tp.inference = &inference{seen: map[tensor.Storage]bool{}}
	return tp
}

// Inference reports whether tp is an inference tape (NewInference).
func (tp *Tape) Inference() bool { return tp != nil && tp.inference != nil }

// noteReads registers an op's inputs: activations of this pass become
// candidates for ReleaseRead; leaves are pinned (a view of one is never
// released).
func (tp *Tape) noteReads(in []*Var) {
	for _, v := range in {
		if v == nil || v.Value == nil {
			continue
		}
		st := v.Value.Storage()
		if v.leaf {
			tp.pin(st)
			continue
		}
		if tensor.Born(v.Value) <= tp.life.mark || !tensor.CanRelease(v.Value) || tp.inference.seen[st] {
			continue
		}
		tp.inference.seen[st] = true
		tp.inference.read = append(tp.inference.read, v.Value)
	}
}

// ReleaseRead releases every storage the pass's ops have read so far,
// except those of keep (and of views sharing them) and those pinned:
// the caller vouches that nothing else read so far is used again. Kept
// storages stay candidates for the next call. On any other tape it does
// nothing.
func (tp *Tape) ReleaseRead(keep ...*Var) error {
	return tp.releaseReads(keep, false)
}

// ReleasePass ends an inference pass: it releases what ReleaseRead would,
// and the pass's constants (ReleaseAfterBackward). Keep's storages leave
// the tape: they are the caller's from now on, and a later op on the tape
// that reads one makes it a candidate again. On any other tape it does
// nothing.
func (tp *Tape) ReleasePass(keep ...*Var) error {
	if !tp.Inference() {
		return nil
	}
	if err := tp.releaseReads(keep, true); err != nil {
		return err
	}
	if err := tensor.Catch(tp.releaseAfterBackward); err != nil {
		return fmt.Errorf("autograd: ending an inference pass: %w", err)
	}
	return nil
}

// releaseReads releases the read storages but keep's; those stay
// candidates unless handOver.
func (tp *Tape) releaseReads(keep []*Var, handOver bool) error {
	if !tp.Inference() {
		return nil
	}
	kept := map[tensor.Storage]bool{}
	for _, v := range keep {
		if v != nil && v.Value != nil {
			kept[v.Value.Storage()] = true
		}
	}
	inf := tp.inference
	left := inf.read[:0]
	err := tensor.Catch(func() {
		for _, t := range inf.read {
			st := t.Storage()
			if kept[st] && !handOver {
				left = append(left, t)
				continue
			}
			delete(inf.seen, st)
			if !kept[st] && !tp.life.pinned[st] {
				tp.releaseNow(t, "an activation an inference pass read")
			}
		}
	})
	clear(inf.read[len(left):])
	inf.read = left
	return err
}
