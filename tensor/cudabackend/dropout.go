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
//
// BF16 x and dst (dropout_apply_fwd_bf16) drop the elements an F32 call at
// the same key and pos drops and round x·scale, computed in float32, once
// to bf16: the CPU's dropout.Apply on x widened, rounded. (tensor.Dropout
// on a BF16 x multiplies by the F32 mask converted to BF16 instead, which
// rounds scale to bf16 first; wiring bf16 activations to this call will
// change those products by up to a bf16 ulp where scale is not a bf16
// value.) The mask itself is drawn in F32 only: tensor.DropoutMask always
// makes an F32 mask, and tensor.Dropout converts it for other dtypes.
func (b *Backend) Dropout(dst, x *tensor.Tensor, key, pos uint64, drop uint32, scale float32) error {
	defer keep(dst, x)
	dt := dst.DType()
	switch {
	case x == nil && dt != tensor.F32:
		return fmt.Errorf("cuda: %w: Dropout: mask into %v dst %v (F32 expected: masks are drawn in float32)", tensor.ErrUnsupported, dt, dst)
	case dt != tensor.F32 && dt != tensor.BF16:
		return fmt.Errorf("cuda: %w: Dropout on %v (F32 or BF16 expected)", tensor.ErrUnsupported, dt)
	case x != nil && x.DType() != dt:
		return fmt.Errorf("cuda: %w: Dropout: x %v into dst %v (x of dst's dtype expected: %v expected)", tensor.ErrUnsupported, x.DType(), dt, dt)
	}
	if !dst.IsContiguous() {
		return fmt.Errorf("cuda: %w: Dropout: dst %v is a strided view (contiguous %v expected)", tensor.ErrUnsupported, dst, dt)
	}
	if x != nil {
		if !x.IsContiguous() {
			return fmt.Errorf("cuda: %w: Dropout: x %v is a strided view (contiguous %v expected)", tensor.ErrUnsupported, x, dt)
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
	if xp != d && overlap(xp, d, int64(n)*int64(dt.Size())) {
		return fmt.Errorf("cuda: Dropout: x %v and dst %v overlap without being the same elements (in place or disjoint expected)", x, dst)
	}
	kt, err := kdt(dt)
	if err != nil {
		return err
	}
	return b.dev.DropoutApply(b.s, kt, d, xp, key, pos, int64(n), drop, scale)
}

// overlap reports whether the byte ranges [a, a+size) and [c, c+size) meet.
func overlap(a, c cuda.Ptr, size int64) bool {
	return a < c+cuda.Ptr(size) && c < a+cuda.Ptr(size)
}
