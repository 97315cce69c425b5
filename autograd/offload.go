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
// This is for values read by nothing but lazy backwards — gradient checkpointing's
// saved block inputs, the outputs of Checkpoint that the next region reads
// only in its recompute — which are then held in host memory from the
// forward to the backward instead of device memory. Otherwise (another
// use, a view, a kept or pinned value, the CPU backend, a tape that records
// nothing) Offload does nothing. v.Value is nil once offloaded. An error
// is the host copy's (pinned memory could not be had).
func (tp *Tape) Offload(vs ...*Var) error {
	if tp == nil || tp.region != nil {
		return nil
	}
	for _, v := range vs {
		if !tp.mayDrop(v) {
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
			return t
		}
		tp.drop(v, restore, "offloaded "+v.Name)
	}
	return nil
}
