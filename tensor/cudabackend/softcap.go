package cudabackend

import (
	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Tanh soft-capping (Gemma 2). The final-logit cap is this file's
// tensor.SoftcapBackend through softcap.cu; the attention-score cap
// (AttentionParams.Softcap) runs inside the attention kernels' capped
// variants (attention.go passes it on). Both float32, as the other fused
// ops.

// Softcap: dst = c·tanh(x/c); dst may be x.
func (b *Backend) Softcap(dst, x *tensor.Tensor, c float64) error {
	defer keep(dst, x)
	if err := tensor.CheckSoftcap("Softcap", c, dst, x); err != nil {
		return cudaErr(err)
	}
	if err := allF32("Softcap", dst, x); err != nil {
		return err
	}
	p, err := b.ptrs(dst, x)
	if err != nil {
		return err
	}
	return b.dev.SoftcapFwd(b.s, cuda.F32, p[0], p[1], float32(c), int64(x.Numel()))
}

// SoftcapBackward: dx = dy·(1 − (y/c)²), y the forward's output; dx may be
// dy.
func (b *Backend) SoftcapBackward(dx, dy, y *tensor.Tensor, c float64) error {
	defer keep(dx, dy, y)
	if err := tensor.CheckSoftcap("SoftcapBackward", c, dx, dy, y); err != nil {
		return cudaErr(err)
	}
	if err := allF32("SoftcapBackward", dx, dy, y); err != nil {
		return err
	}
	p, err := b.ptrs(dx, dy, y)
	if err != nil {
		return err
	}
	return b.dev.SoftcapBwd(b.s, cuda.F32, p[0], p[1], p[2], float32(c), int64(y.Numel()))
}
