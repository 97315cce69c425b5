package cuda

import (
	"fmt"
	"math"
	"testing"
)

// geluTanhRef is gelu_pytorch_tanh and its derivative in float64, written
// from the formula (tanh, not the kernel's sigmoid form).
func geluTanhRef(x float64) (y, dy float64) {
	const c = 0.7978845608028654 // √(2/π)
	th := math.Tanh(c * (x + 0.044715*x*x*x))
	y = 0.5 * x * (1 + th)
	dy = 0.5*(1+th) + 0.5*x*(1-th*th)*c*(1+3*0.044715*x*x)
	return y, dy
}

// withEdges appends the values where the formula saturates or overflows in
// float32 (exp(−2v) = +Inf below g ≈ −6.5, g³ = ±Inf beyond 7e12), rounded
// to t: they must give the limits (0 or g·u, slopes 0 or 1), never NaN.
func withEdges(v []float32, t DType) []float32 {
	e := []float32{0, -1e-30, 3, -3, 6.5, -6.5, 10, -10, 30, -30, 1e4, -1e4, 1e13, -1e13}
	if t == BF16 {
		e = fromBF16s(toBF16s(e))
	}
	return append(v, e...)
}

// TestGeGLU checks geglu.cu against the float64 formula. Tolerances
// (helpers_test.go): f32 1e-5 relative, bf16 one output rounding (1e-2);
// dg's error scales with its two terms |dy·u|·(|s| + |g·d|), since gelu'
// crosses zero near g = −0.75.
func TestGeGLU(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, n0 := range elemSizes {
			gt := withEdges(g.randn(n0, 2, dt), dt)
			n := len(gt)
			u, dout := g.randn(n, 1, dt), g.randn(n, 1, dt)
			pg, pu, pd := g.up(gt, dt), g.up(u, dt), g.up(dout, dt)
			out, dg, du := g.alloc(n*dt.Size()), g.alloc(n*dt.Size()), g.alloc(n*dt.Size())
			g.ok(g.d.GeGLUFwd(g.s, dt, out, pg, pu, int64(n)))
			g.ok(g.d.GeGLUBwd(g.s, dt, dg, du, pd, pg, pu, int64(n)))
			wo, wg, wu, mg := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
			for i := range gt {
				x, uv, dy := float64(gt[i]), float64(u[i]), float64(dout[i])
				y, d := geluTanhRef(x)
				wo[i] = y * uv
				wu[i] = dy * y
				wg[i] = dy * uv * d
				const c = 0.7978845608028654
				th := math.Tanh(c * (x + 0.044715*x*x*x))
				mg[i] = math.Abs(dy*uv) * (0.5*(1+th) + math.Abs(0.5*x*(1-th*th)*c*(1+3*0.044715*x*x)))
			}
			name := fmt.Sprintf("%v/n%d", dt, n)
			compare(t, "geglu_fwd_"+name, g.down(out, n, dt), wo, nil, tolFor(dt))
			compare(t, "geglu_bwd_"+name+"/dg", g.down(dg, n, dt), wg, mg, tolFor(dt))
			compare(t, "geglu_bwd_"+name+"/du", g.down(du, n, dt), wu, nil, tolFor(dt))
		}
	}
}

// TestGeGLUAliased runs the backward in place (dg = g, du = u), as its
// header allows.
func TestGeGLUAliased(t *testing.T) {
	g := needGPU(t)
	n := 1000
	gt, u, dout := g.randn(n, 2, F32), g.randn(n, 1, F32), g.randn(n, 1, F32)
	pg, pu, pd := g.up(gt, F32), g.up(u, F32), g.up(dout, F32)
	g.ok(g.d.GeGLUBwd(g.s, F32, pg, pu, pd, pg, pu, int64(n)))
	wg, wu := make([]float64, n), make([]float64, n)
	for i := range gt {
		y, d := geluTanhRef(float64(gt[i]))
		wg[i] = float64(dout[i]) * float64(u[i]) * d
		wu[i] = float64(dout[i]) * y
	}
	// gelu' crosses zero: allow 1e-5 of |dy·u|·(1 + |g|·3) (its terms' size).
	mg := make([]float64, n)
	for i := range mg {
		mg[i] = math.Abs(float64(dout[i])*float64(u[i])) * (1 + 3*math.Abs(float64(gt[i])))
	}
	compare(t, "geglu_bwd_f32/aliased/dg", g.down(pg, n, F32), wg, mg, tolF32)
	compare(t, "geglu_bwd_f32/aliased/du", g.down(pu, n, F32), wu, nil, tolF32)
}

// TestSoftcap checks softcap.cu against c·tanh(x/c) and dy·(1 − (y/c)²) in
// float64, for Gemma 2's logit cap (30) and a small one, with inputs far
// past the cap (y → ±c, slope → 0) and, in the backward, masked scores
// (y = −Inf or below −c: gradient 0). The slope 1 − t² cancels near |t| = 1,
// so its error scales with |dy|·(1 + t²). Tolerances as helpers_test.go's.
func TestSoftcap(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, c := range []float32{30, 1.5} {
			for _, n0 := range elemSizes {
				x := withEdges(g.randn(n0, float64(c), dt), dt)
				n := len(x)
				// y for the backward: capped values in (−c, c), plus masked ones.
				y := g.randn(n, float64(c)/2, dt)
				for i := range y {
					y[i] = max(min(y[i], c), -c)
				}
				y[0], y[n-1] = float32(math.Inf(-1)), -2*c
				dy := g.randn(n, 1, dt)
				px, py, pdy := g.up(x, dt), g.up(y, dt), g.up(dy, dt)
				out, dx := g.alloc(n*dt.Size()), g.alloc(n*dt.Size())
				g.ok(g.d.SoftcapFwd(g.s, dt, out, px, c, int64(n)))
				g.ok(g.d.SoftcapBwd(g.s, dt, dx, pdy, py, c, int64(n)))
				wo, wd, md := make([]float64, n), make([]float64, n), make([]float64, n)
				cc := float64(c)
				for i := range x {
					wo[i] = cc * math.Tanh(float64(x[i])/cc)
					th := float64(y[i]) / cc
					if float64(y[i]) >= -cc {
						wd[i] = float64(dy[i]) * (1 - th*th)
						md[i] = math.Abs(float64(dy[i])) * (1 + th*th)
					}
				}
				name := fmt.Sprintf("%v/c%g/n%d", dt, c, n)
				compare(t, "softcap_fwd_"+name, g.down(out, n, dt), wo, nil, tolFor(dt))
				compare(t, "softcap_bwd_"+name, g.down(dx, n, dt), wd, md, tolFor(dt))
			}
		}
	}
}

// TestSoftcapInPlace runs both directions in place (y = x, dx = dy), as
// the tensor package does for the logits.
func TestSoftcapInPlace(t *testing.T) {
	g := needGPU(t)
	n, c := 4097, float32(30)
	x, dy := g.randn(n, 40, F32), g.randn(n, 1, F32)
	px, pdy := g.up(x, F32), g.up(dy, F32)
	g.ok(g.d.SoftcapFwd(g.s, F32, px, px, c, int64(n)))
	g.ok(g.d.SoftcapBwd(g.s, F32, pdy, pdy, px, c, int64(n)))
	y := g.down(px, n, F32)
	wo, wd, md := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range x {
		th := math.Tanh(float64(x[i]) / float64(c))
		wo[i] = float64(c) * th
		// The backward reads the kernel's own y: the reference does too.
		ty := float64(y[i]) / float64(c)
		wd[i] = float64(dy[i]) * (1 - ty*ty)
		md[i] = math.Abs(float64(dy[i])) * (1 + ty*ty)
	}
	compare(t, "softcap_fwd_f32/inplace", y, wo, nil, tolF32)
	compare(t, "softcap_bwd_f32/inplace", g.down(pdy, n, F32), wd, md, tolF32)
}

// TestSoftcapBadCap: a cap of 0, below 0, NaN or +Inf is refused before
// any launch (no GPU needed: the launcher checks first).
func TestSoftcapBadCap(t *testing.T) {
	var d *Device
	for _, c := range []float32{0, -1, float32(math.NaN()), float32(math.Inf(1))} {
		if err := d.SoftcapFwd(Stream{}, F32, 0, 0, c, 1); err == nil {
			t.Errorf("SoftcapFwd accepted cap %g", c)
		}
		if err := d.SoftcapBwd(Stream{}, F32, 0, 0, 0, c, 1); err == nil {
			t.Errorf("SoftcapBwd accepted cap %g", c)
		}
		a := AttentionShape{B: 1, T: 1, Hq: 1, Hkv: 1, D: 32, Softcap: c}
		if c != 0 {
			if err := d.AttentionFwd(Stream{}, F32, 0, 0, 0, 0, 0, a); err == nil {
				t.Errorf("AttentionFwd accepted cap %g", c)
			}
			m := MaskedAttention{B: 1, T: 1, S: 1, Hq: 1, Hkv: 1, D: 8, Softcap: c}
			if err := d.MaskedAttentionFwd(Stream{}, F32, 0, 0, 0, 0, 0, m); err == nil {
				t.Errorf("MaskedAttentionFwd accepted cap %g", c)
			}
		}
	}
}
