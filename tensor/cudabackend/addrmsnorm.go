package cudabackend

import (
	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// AddRMSNorm (tensor.AddRMSNormBackend): h = a + b and y = rmsnorm(h)·w in
// one kernel (add_rmsnorm_fwd); w == nil uses the cached ones, as RMSNorm.
func (b *Backend) AddRMSNorm(h, y, invRMS, x, r, w *tensor.Tensor, eps float64) error {
	defer keep(h, y, invRMS, x, r, w)
	if err := tensor.CheckAddRMSNorm(h, y, invRMS, x, r, w); err != nil {
		return cudaErr(err)
	}
	if err := allF32("AddRMSNorm", h, y, invRMS, x, r, w); err != nil {
		return err
	}
	n, d := tensor.Rows(x)
	if n == 0 {
		return nil
	}
	p, err := b.ptrs(h, y, invRMS, x, r, w)
	if err != nil {
		return err
	}
	if w == nil {
		if p[5], err = b.onesF32(d); err != nil {
			return err
		}
	}
	return b.dev.AddRMSNormFwd(b.s, cuda.F32, p[0], p[1], p[2], p[3], p[4], p[5], n, d, float32(eps))
}

// AddRMSNormBackward: dx = dh + the norm's dx (add_rmsnorm_bwd), dw (+=,
// may be nil); without a residual gradient (dh nil) it is RMSNormBackward.
func (b *Backend) AddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS *tensor.Tensor) error {
	if err := tensor.CheckAddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS); err != nil {
		return cudaErr(err)
	}
	if dh == nil {
		return b.RMSNormBackward(dx, dw, dy, h, w, invRMS)
	}
	defer keep(dx, dw, dh, dy, h, w, invRMS)
	if err := allF32("AddRMSNormBackward", dx, dw, dh, dy, h, w, invRMS); err != nil {
		return err
	}
	n, d := tensor.Rows(h)
	if n == 0 {
		return nil
	}
	p, err := b.ptrs(dx, dw, dh, dy, h, w, invRMS)
	if err != nil {
		return err
	}
	if w == nil {
		if p[5], err = b.onesF32(d); err != nil {
			return err
		}
	}
	return b.dev.AddRMSNormBwd(b.s, cuda.F32, p[0], p[1], p[2], p[3], p[4], p[5], p[6], n, d)
}
