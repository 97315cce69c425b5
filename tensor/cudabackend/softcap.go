package cudabackend

import (
	"github.com/ftune/ftune/tensor"
)

// Tanh soft-capping (Gemma 2). The final-logit cap is this file's
// tensor.SoftcapBackend through softcap.cu; the attention-score cap
// (AttentionParams.Softcap) runs inside the attention kernels' capped
// variants (attention.go passes it on). Softcap's operands are all F32 or
// all BF16 (softcap_{fwd,bwd}_bf16: tanh in float32, rounded once), as the
// other fused ops; the attention cap follows the attention kernels.

// Softcap: dst = c·tanh(x/c); dst may be x. Both F32 or both BF16.
func (b *Backend) Softcap(dst, x *tensor.Tensor, c float64) error {
	defer keep(dst, x)
	if err := tensor.CheckSoftcap("Softcap", c, dst, x); err != nil {
		return cudaErr(err)
	}
	t, err := actDType("Softcap", dst, x)
	if err != nil {
		return err
	}
	p, err := b.ptrs(dst, x)
	if err != nil {
		return err
	}
	return b.dev.SoftcapFwd(b.s, t, p[0], p[1], float32(c), int64(x.Numel()))
}

// SoftcapBackward: dx = dy·(1 − (y/c)²), y the forward's output; dx may be
// dy. All F32 or all BF16.
func (b *Backend) SoftcapBackward(dx, dy, y *tensor.Tensor, c float64) error {
	defer keep(dx, dy, y)
	if err := tensor.CheckSoftcap("SoftcapBackward", c, dx, dy, y); err != nil {
		return cudaErr(err)
	}
	t, err := actDType("SoftcapBackward", dx, dy, y)
	if err != nil {
		return err
	}
	p, err := b.ptrs(dx, dy, y)
	if err != nil {
		return err
	}
	return b.dev.SoftcapBwd(b.s, t, p[0], p[1], p[2], float32(c), int64(y.Numel()))
}
