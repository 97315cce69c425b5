package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Dropout implements tensor.DropoutBackend: LoRA dropout is drawn where it
// is used (dropout.cu, kernels/dropout's counter-based stream), bit for bit
// the CPU's, so no mask is copied from the host. x nil fills dst with the
// mask (dropout_mask_fwd_f32); otherwise dst = x·mask in one pass
// (dropout_apply_fwd_f32), the mask never stored, dst may be x. Kept
// elements are scaled by scale (the interface's keep, renamed here so as
// not to hide the keep helper).
func (b *Backend) Dropout(dst, x *tensor.Tensor, key, pos uint64, drop uint32, scale float32) error {
	defer keep(dst, x)
	if err := allF32("Dropout", dst, x); err != nil {
		return err
	}
	if !dst.IsContiguous() {
		return fmt.Errorf("cuda: %w: Dropout: dst %v is a strided view (contiguous F32 expected)", tensor.ErrUnsupported, dst)
	}
	if x != nil {
		if !x.IsContiguous() {
			return fmt.Errorf("cuda: %w: Dropout: x %v is a strided view (contiguous F32 expected)", tensor.ErrUnsupported, x)
		}
		if x.Numel() != dst.Numel() {
			return fmt.Errorf("cuda: Dropout: x %v has %d elements, dst %v %d (the same number expected)", x, x.Numel(), dst, dst.Numel())
		}
	}
	n := dst.Numel()
	if n == 0 {
		return nil
	}
	d, err := b.ptr(dst)
	if err != nil {
		return fmt.Errorf("Dropout dst: %w", err)
	}
	if x == nil {
		return b.dev.DropoutMask(b.s, d, key, pos, int64(n), drop, scale)
	}
	xp, err := b.ptr(x)
	if err != nil {
		return fmt.Errorf("Dropout x: %w", err)
	}
	// In place is one thread reading its four elements before writing
	// them; a shifted overlap would have threads read what others wrote.
	if xp != d && overlap(xp, d, int64(n)*4) {
		return fmt.Errorf("cuda: Dropout: x %v and dst %v overlap without being the same elements (in place or disjoint expected)", x, dst)
	}
	return b.dev.DropoutApply(b.s, d, xp, key, pos, int64(n), drop, scale)
}

// overlap reports whether the byte ranges [a, a+size) and [c, c+size) meet.
func overlap(a, c cuda.Ptr, size int64) bool {
	return a < c+cuda.Ptr(size) && c < a+cuda.Ptr(size)
}
