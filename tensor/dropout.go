package tensor

import (
	"fmt"

	"github.com/ftune/ftune/kernels/dropout"
)

// DropoutMaskBackend is implemented by backends that draw dropout masks
// where the tensor lives (kernels/dropout's counter-based stream), so a
// GPU never receives a mask from the host.
type DropoutMaskBackend interface {
	// DropoutMask fills dst (F32, contiguous) with the mask drawn at
	// position pos of the stream key: element i is keep where lane i%4 of
	// draw pos+i/4 is at least drop, else 0 (dropout.Mask).
	DropoutMask(dst *Tensor, key, pos uint64, drop uint32, keep float32) error
}

// DropoutMask returns the float32 dropout mask of the given shape for
// probability p, drawn at position pos of the stream key (dropout.Mask):
// each element 1/(1−p) or 0. The stream then continues at
// pos + dropout.Draws(numel). Every backend gives the same bits; one
// without DropoutMaskBackend gets the CPU's mask copied to it.
func DropoutMask(b Backend, key, pos uint64, p float64, shape ...int) *Tensor {
	if p < 0 || p >= 1 {
		fail("DropoutMask: p %v outside [0, 1)", p)
	}
	drop, keep := dropout.Threshold(p)
	if db, ok := b.(DropoutMaskBackend); ok {
		out := New(b, F32, shape...)
		check(db.DropoutMask(out, key, pos, drop, keep))
		return out
	}
	host := New(cpuDefault, F32, shape...)
	check(cpuDefault.DropoutMask(host, key, pos, drop, keep))
	return FromHost(b, F32, window[float32](host), shape...)
}

// DropoutMask draws the mask in parts of whole draws, in parallel.
func (c *CPUBackend) DropoutMask(dst *Tensor, key, pos uint64, drop uint32, keep float32) error {
	if dst.dtype != F32 || !dst.IsContiguous() {
		return cpuErr(fmt.Errorf("DropoutMask: dst %v %v (contiguous F32 expected)", dst.dtype, dst.shape))
	}
	d := window[float32](dst)
	groups := int(dropout.Draws(len(d)))
	parallelRange(groups, 16, func(_, lo, hi int) {
		dropout.Mask(d[4*lo:min(len(d), 4*hi)], key, pos+uint64(lo), drop, keep)
	})
	return nil
}
