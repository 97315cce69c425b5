package cuda

import "math"

// Launchers for geglu.cu and softcap.cu: the elementwise ops Gemma 2 and 3
// add to a Llama step (the GELU-tanh gated MLP and the final-logit
// soft-cap; the attention-score cap is a variant of the attention kernels).

// GeGLUFwd sets out = gelu_tanh(g) * u over n elements.
func (d *Device) GeGLUFwd(s Stream, t DType, out, g, u Ptr, n int64) error {
	if err := checkDType("GeGLUFwd", t); err != nil {
		return err
	}
	return d.launch1D(s, kernelName("geglu", "fwd", t), n, new(Args).Ptr(out).Ptr(g).Ptr(u).I64(n))
}

// GeGLUBwd sets dg and du (=) from dout; dg, du may alias g, u.
func (d *Device) GeGLUBwd(s Stream, t DType, dg, du, dout, g, u Ptr, n int64) error {
	if err := checkDType("GeGLUBwd", t); err != nil {
		return err
	}
	return d.launch1D(s, kernelName("geglu", "bwd", t), n, new(Args).Ptr(dg).Ptr(du).Ptr(dout).Ptr(g).Ptr(u).I64(n))
}

// checkCap refuses a cap the kernels cannot divide by.
func checkCap(op string, c float32) error {
	if !(c > 0) || math.IsInf(float64(c), 1) {
		return badArg("%s: cap %g, want a finite value > 0", op, c)
	}
	return nil
}

// SoftcapFwd sets y = c tanh(x/c) over n elements (y may alias x).
func (d *Device) SoftcapFwd(s Stream, t DType, y, x Ptr, c float32, n int64) error {
	if err := checkDType("SoftcapFwd", t); err != nil {
		return err
	}
	if err := checkCap("SoftcapFwd", c); err != nil {
		return err
	}
	return d.launch1D(s, kernelName("softcap", "fwd", t), n, new(Args).Ptr(y).Ptr(x).F32(c).I64(n))
}

// SoftcapBwd sets dx = dy (1 - (y/c)^2) over n elements, y being
// SoftcapFwd's output (dx may alias dy); y < -c (a masked score) gives 0.
func (d *Device) SoftcapBwd(s Stream, t DType, dx, dy, y Ptr, c float32, n int64) error {
	if err := checkDType("SoftcapBwd", t); err != nil {
		return err
	}
	if err := checkCap("SoftcapBwd", c); err != nil {
		return err
	}
	return d.launch1D(s, kernelName("softcap", "bwd", t), n, new(Args).Ptr(dx).Ptr(dy).Ptr(y).F32(c).I64(n))
}
