package autograd

import (
	"fmt"

	"github.com/ftune/ftune/tensor"
)

// Values held in host memory between the forward and the backward.

// tracked marks out so that its uses are counted (needs, Checkpoint),
// which Offload requires: Checkpoint's outputs, the saved inputs of the
// next region.
func tracked(out *Var) { out.remat = &rematerialize{} }

// Offload tells the tape that the forward will not read v again and that
// nothing outside the tape holds its value: on a backend that can keep
// values in host memory (tensor.HostOffloader, a GPU) the value is copied
// there and its device storage released now, and the first backward that
// reads it copies it back (queued in order on the device: no wait on the
// host), the copy then released as the original would have been; it also
// prefetches the value offloaded before it, which the backward reads next.
// This is for values read by nothing but lazy backwards — gradient
// checkpointing's saved block inputs: the outputs of Checkpoint that the
// next region reads only in its recompute, and an unrecorded op's output
// that the Checkpoint just recorded adopted (the frozen embeddings' lookup,
// the first block's input) — which are then held in host memory from the
// forward to the backward instead of device memory. Otherwise (another
// use, a view, a kept or pinned value, the CPU backend, a tape that records
// nothing) Offload does nothing. v.Value is nil once offloaded. An error
// is the host copy's (pinned memory could not be had).
func (tp *Tape) Offload(vs ...*Var) error {
	if !tp.Training() || tp.region != nil {
		return nil
	}
	for _, v := range vs {
		node, adopted := tp.adoptedByLastNode(v)
		if !adopted && !tp.mayDrop(v) {
			continue
		}
		off, err := tensor.Offload(v.Value)
		if err != nil {
			return fmt.Errorf("autograd: %s: %w", v.Name, err)
		}
		if off == nil {
			continue // the backend keeps values in host memory already
		}
		i := len(tp.offloaded)
		tp.offloaded = append(tp.offloaded, off)
		restore := func() *tensor.Tensor {
			t, err := off.Restore()
			if err == nil && i > 0 && tp.offloaded[i-1] != nil {
				// The backward reads the offloaded values in the reverse of
				// the order the forward offloaded them (checkpointed blocks,
				// last to first): the one before this one starts coming back
				// now and arrives while this one's region is computed again
				// and differentiated. Device memory holds one more value
				// for it (the memory plan counts it).
				err = tp.offloaded[i-1].Prefetch()
			}
			tp.offloaded[i] = nil
			if err != nil {
				panic(&tensor.Error{Err: fmt.Errorf("autograd: %s: %w", v.Name, err)})
			}
			if adopted {
				// Released, as the original would have been, after the
				// backward of the node that adopted it.
				tp.life.adopted[t.Storage()] = true
				tp.life.afterNode[node] = append(tp.life.afterNode[node], t)
			}
			return t
		}
		if adopted {
			tp.dropAdopted(v, node, restore, "offloaded "+v.Name)
			continue
		}
		tp.drop(v, restore, "offloaded "+v.Name)
	}
	return nil
}

// adoptedByLastNode reports whether v is the output of an unrecorded op
// (the frozen embeddings' lookup: the first block's input) that the tape
// adopted at the last node recorded, and that node's index. No recorded
// node read v before that one (the adopter is the first reader), so when
// the caller offloads v right after it, as nn does after a Checkpoint,
// that node's backward is v's only reader left.
func (tp *Tape) adoptedByLastNode(v *Var) (int, bool) {
	if v == nil || v.Value == nil || v.remat != nil || len(tp.nodes) == 0 || !tp.ReleaseActivations {
		return 0, false
	}
	st := v.Value.Storage()
	if !tp.life.adopted[st] || tp.life.pinned[st] {
		return 0, false
	}
	node := len(tp.nodes) - 1
	for _, t := range tp.life.afterNode[node] {
		if t.Storage() == st {
			return node, true
		}
	}
	return 0, false
}

// dropAdopted is drop for an adopted value: its storage is released now
// instead of after the adopting node's backward, and the copy restore
// brings back is released there instead (restore registers it).
func (tp *Tape) dropAdopted(v *Var, node int, restore func() *tensor.Tensor, what string) {
	st := v.Value.Storage()
	after := tp.life.afterNode[node]
	for j, t := range after {
		if t.Storage() == st {
			tp.life.afterNode[node] = append(after[:j:j], after[j+1:]...)
			break
		}
	}
	delete(tp.life.adopted, st)
	tp.releaseNow(v.Value, what)
	v.remat = &rematerialize{forgotten: true, adopted: true, restore: restore, shape: v.Value.Shape().Clone(), dtype: v.Value.DType(), tape: tp}
	v.Value = nil
}
