package tensor

import "fmt"

// AddRMSNorm fuses a decoder block's residual add with the RMSNorm that
// reads its result: h = a + b, y = h/rms(h)·w. Unfused, the add reads a
// and b and writes h, then the norm reads h again; fused it is one pass
// over the rows (read a, b; write h, y). The backward likewise adds the
// residual gradient dh to the norm's dx in the pass that computes dx.

// AddRMSNormBackend is implemented by backends with the fused kernels. It
// is optional: on a backend without it AddRMSNorm and AddRMSNormBackward
// run the backend's Add, RMSNorm and RMSNormBackward instead. That
// fallback computes the same values (the fused kernels keep the unfused
// rounding) and is no user-visible setting, so nothing is printed.
type AddRMSNormBackend interface {
	// AddRMSNorm: a, b, h, y [N,D], w [D] or nil, invRMS [N]; h = a + b,
	// y = rmsnorm(h)·w, all contiguous, h and y distinct from a and b.
	AddRMSNorm(h, y, invRMS, a, b, w *Tensor, eps float64) error
	// AddRMSNormBackward: dx = dh + RMSNormBackward's dx for dy at h (=;
	// dh may be nil: no residual gradient), dw (+=, may be nil).
	AddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS *Tensor) error
}

// SupportsAddRMSNorm reports whether b runs AddRMSNorm as one kernel.
func SupportsAddRMSNorm(b Backend) bool {
	_, ok := b.(AddRMSNormBackend)
	return ok
}

// AddRMSNorm returns h = a + b, y = rmsnorm(h)·w and the inverse RMS per
// row; a and b have one shape and dtype.
func AddRMSNorm(a, b, w *Tensor, eps float64) (h, y, invRMS *Tensor) {
	if !a.shape.Equal(b.shape) || a.dtype != b.dtype {
		fail("AddRMSNorm: a %v %v and b %v %v differ", a.dtype, a.shape, b.dtype, b.shape)
	}
	be := sameBackend(a, b)
	fb, ok := be.(AddRMSNormBackend)
	if !ok {
		h = Add(a, b)
		y, invRMS = RMSNorm(h, w, eps)
		return h, y, invRMS
	}
	a, b = a.Contiguous(), b.Contiguous()
	h = New(be, a.dtype, a.shape...)
	y = New(be, a.dtype, a.shape...)
	n, _ := Rows(a)
	invRMS = New(be, statDType(a.dtype), n)
	check(fb.AddRMSNorm(h, y, invRMS, a, b, w, eps))
	return h, y, invRMS
}

// AddRMSNormInPlace is AddRMSNorm with the sum written over a (contiguous),
// which is returned as h.
func AddRMSNormInPlace(a, b, w *Tensor, eps float64) (h, y, invRMS *Tensor) {
	if !a.shape.Equal(b.shape) || a.dtype != b.dtype || !a.IsContiguous() {
		fail("AddRMSNormInPlace: a %v %v (contiguous) and b %v %v differ", a.dtype, a.shape, b.dtype, b.shape)
	}
	be := sameBackend(a, b)
	fb, ok := be.(AddRMSNormBackend)
	if !ok {
		AddInPlace(a, b)
		y, invRMS = RMSNorm(a, w, eps)
		return a, y, invRMS
	}
	b = b.Contiguous()
	y = New(be, a.dtype, a.shape...)
	n, _ := Rows(a)
	invRMS = New(be, statDType(a.dtype), n)
	check(fb.AddRMSNorm(a, y, invRMS, a, b, w, eps))
	return a, y, invRMS
}

// AddRMSNormBackward returns dh + the RMSNorm backward's dx for dy at h
// (dh may be nil) and adds the weight's gradient into dw (may be nil).
func AddRMSNormBackward(dw, dh, dy, h, w, invRMS *Tensor) *Tensor {
	dy = dy.Contiguous()
	if dh != nil {
		dh = dh.Contiguous()
	}
	be := dy.b
	dx := New(be, h.dtype, h.shape...)
	if fb, ok := be.(AddRMSNormBackend); ok {
		check(fb.AddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS))
		return dx
	}
	check(be.RMSNormBackward(dx, dw, dy, h, w, invRMS))
	if dh != nil {
		AddInPlace(dx, dh)
	}
	return dx
}

// CheckAddRMSNorm checks the fused forward's operands for every backend.
func CheckAddRMSNorm(h, y, invRMS, a, b, w *Tensor) error {
	if err := CheckContiguous(a, b, h); err != nil {
		return err
	}
	if !a.shape.Equal(b.shape) || h.Numel() != a.Numel() {
		return fmt.Errorf("AddRMSNorm a %v b %v h %v", a.shape, b.shape, h.shape)
	}
	// h may be a (AddRMSNormInPlace); nothing else may alias.
	if h == b || y == a || y == b || h == y {
		return fmt.Errorf("AddRMSNorm: y must be a new tensor, and h new or a itself")
	}
	return CheckRMSNorm(y, invRMS, a, w)
}

// CheckAddRMSNormBackward checks the fused backward's operands.
func CheckAddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS *Tensor) error {
	if dx == nil {
		return fmt.Errorf("AddRMSNormBackward: dx is required")
	}
	if dh != nil && (!dh.IsContiguous() || dh.Numel() != h.Numel()) {
		return fmt.Errorf("AddRMSNormBackward dh %v for h %v (contiguous, same size expected)", dh.shape, h.shape)
	}
	return CheckRMSNormBackward(dx, dw, dy, h, w, invRMS)
}

func (c *CPUBackend) AddRMSNorm(h, y, invRMS, a, b, w *Tensor, eps float64) error {
	if err := CheckAddRMSNorm(h, y, invRMS, a, b, w); err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(h, y, invRMS, a, b, w)
	if err != nil {
		return err
	}
	n, dim := Rows(a)
	if dt == F32 {
		addRMSNormF32(window[float32](h), window[float32](y), window[float32](invRMS), window[float32](a), window[float32](b), window[float32](w), n, dim, eps)
		return nil
	}
	addRMSNorm(window[float64](h), window[float64](y), window[float64](invRMS), window[float64](a), window[float64](b), window[float64](w), n, dim, eps)
	return nil
}

// addRMSNorm is the definition: each row's sum, then rmsnorm's row loop
// on it (the same reduction order as rmsnorm, so the results are those
// of Add followed by RMSNorm).
func addRMSNorm[T float](h, y, inv, a, b, w []T, n, dim int, eps float64) {
	for i := range h {
		h[i] = a[i] + b[i]
	}
	rmsnormRows(y, inv, h, w, n, dim, eps)
}

func (c *CPUBackend) AddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS *Tensor) error {
	if err := CheckAddRMSNormBackward(dx, dw, dh, dy, h, w, invRMS); err != nil {
		return cpuErr(err)
	}
	dt, err := sameFloat(dx, dw, dh, dy, h, w, invRMS)
	if err != nil {
		return err
	}
	n, dim := Rows(h)
	if dt == F32 {
		rmsnormBwdF32(window[float32](dx), window[float32](dw), window[float32](dh), window[float32](dy), window[float32](h), window[float32](w), window[float32](invRMS), n, dim)
		return nil
	}
	rmsnormBwdRows(window[float64](dx), window[float64](dw), window[float64](dh), window[float64](dy), window[float64](h), window[float64](w), window[float64](invRMS), n, dim)
	return nil
}
