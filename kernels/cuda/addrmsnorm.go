package cuda

// Launchers for rmsnorm.cu's add_rmsnorm kernels: a decoder block's residual
// add fused with the RMSNorm that reads its sum.

// AddRMSNormFwd sets h = a + b (rounded to t) and y = rmsnorm(h)·w over the
// R rows of [R,C], storing rstd [R] float32 for the backward. h and y must
// not alias a or b (the second pass re-reads a and b). w is of type wt
// (see normKernel).
func (d *Device) AddRMSNormFwd(s Stream, t, wt DType, h, y, rstd, a, b, w Ptr, R, C int, eps float32) error {
	if err := checkRows("AddRMSNormFwd", R, C); err != nil {
		return err
	}
	name, err := normKernel("add_rmsnorm", "fwd", t, wt)
	if err != nil || R == 0 {
		return err
	}
	f, err := d.Kernel(name)
	if err != nil {
		return err
	}
	return f.Launch(s, Dim3{R, 1, 1}, Dim3{256, 1, 1}, 0, new(Args).Ptr(h).Ptr(y).Ptr(rstd).Ptr(a).Ptr(b).Ptr(w).Int(C).F32(eps))
}

// AddRMSNormBwd sets dx = dh + RMSNormBwd's dx for dy at x (=) and, when
// dw != 0, accumulates dw += (float32 [C]) as RMSNormBwd does.
func (d *Device) AddRMSNormBwd(s Stream, t, wt DType, dx, dw, dh, dy, x, w, rstd Ptr, R, C int) error {
	if err := checkRows("AddRMSNormBwd", R, C); err != nil {
		return err
	}
	name, err := normKernel("add_rmsnorm", "bwd", t, wt)
	if err != nil || R == 0 {
		return err
	}
	f, err := d.Kernel(name)
	if err != nil {
		return err
	}
	if err := f.Launch(s, Dim3{R, 1, 1}, Dim3{256, 1, 1}, 0, new(Args).Ptr(dx).Ptr(dh).Ptr(dy).Ptr(x).Ptr(w).Ptr(rstd).Int(C)); err != nil {
		return err
	}
	if dw == 0 {
		return nil
	}
	g, err := d.Kernel("rmsnorm_dw_bwd_" + t.String())
	if err != nil {
		return err
	}
	return g.Launch(s, Dim3{(C + 31) / 32, (R + 255) / 256, 1}, Dim3{32, 8, 1}, 0, new(Args).Ptr(dw).Ptr(dy).Ptr(x).Ptr(rstd).Int(R).Int(C))
}
