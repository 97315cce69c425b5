package cudabackend

import (
	"fmt"

	"github.com/ftune/ftune/tensor"
)

// DropoutMask implements tensor.DropoutMaskBackend: LoRA dropout's mask is
// drawn where it is used (dropout.cu, kernels/dropout's counter-based
// stream), bit for bit the CPU's, so no mask is copied from the host.
// Kept elements are set to scale (the interface's keep, renamed here so
// as not to hide the keep helper).
func (b *Backend) DropoutMask(dst *tensor.Tensor, key, pos uint64, drop uint32, scale float32) error {
	defer keep(dst)
	if err := allF32("DropoutMask", dst); err != nil {
		return err
	}
	if !dst.IsContiguous() {
		return fmt.Errorf("cuda: DropoutMask: dst %v is a strided view (contiguous F32 expected)", dst)
	}
	n := dst.Numel()
	if n == 0 {
		return nil
	}
	p, err := b.ptr(dst)
	if err != nil {
		return err
	}
	return b.dev.DropoutMask(b.s, p, key, pos, int64(n), drop, scale)
}
