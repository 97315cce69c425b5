package cudabackend

import (
	"github.com/ftune/ftune/tensor"
)

// AddRMSNorm (tensor.AddRMSNormBackend): h = a + b and y = rmsnorm(h)·w in
// one kernel (add_rmsnorm_fwd). h, y, a and b are all F32 or all BF16 (the
// bf16 kernel rounds h to bf16, as an unfused bf16 add would store it, and
// normalises that rounded h); invRMS is float32 in either case; w as for
// RMSNorm (nil: ones; F32 used as float32, see normWeight).
func (b *Backend) AddRMSNorm(h, y, invRMS, x, r, w *tensor.Tensor, eps float64) error {
	defer keep(h, y, invRMS, x, r, w)
	if err := tensor.CheckAddRMSNorm(h, y, invRMS, x, r, w); err != nil {
		return cudaErr(err)
	}
	t, err := actDType("AddRMSNorm", h, y, x, r)
	if err != nil {
		return err
	}
	if err := allF32("AddRMSNorm invRMS", invRMS); err != nil {
		return err
	}
	if err := checkNormWeight("AddRMSNorm", t, w); err != nil {
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
	pw, wt, err := b.normWeight(w, p[5], d)
	if err != nil {
		return err
	}
	return b.dev.AddRMSNormFwd(b.s, t, wt, p[0], p[1], p[2], p[3], p[4], pw, n, d, float32(eps))
}

// AddRMSNormBackward: dx = dh + the norm's dx (add_rmsnorm_bwd), dw (+=,
// may be nil); without a residual gradient (dh nil) it is RMSNormBackward.
// dx, dh, dy and h all F32 or all BF16; w, invRMS and dw as for
// RMSNormBackward (dw and invRMS float32).
func (b *Backend) AddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS *tensor.Tensor) error {
	if err := tensor.CheckAddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS); err != nil {
		return cudaErr(err)
	}
	if dh == nil {
		return b.RMSNormBackward(dx, dw, dy, h, w, invRMS)
	}
	defer keep(dx, dw, dh, dy, h, w, invRMS)
	t, err := actDType("AddRMSNormBackward", dx, dh, dy, h)
	if err != nil {
		return err
	}
	if err := allF32("AddRMSNormBackward invRMS", invRMS); err != nil {
		return err
	}
	if err := checkNormGrad("AddRMSNormBackward", dw); err != nil {
		return err
	}
	if err := checkNormWeight("AddRMSNormBackward", t, w); err != nil {
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
	pw, wt, err := b.normWeight(w, p[5], d)
	if err != nil {
		return err
	}
	return b.dev.AddRMSNormBwd(b.s, t, wt, p[0], p[1], p[2], p[3], p[4], pw, p[6], n, d)
}
