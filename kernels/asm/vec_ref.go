package asm

import (
	"math"

	"github.com/ftune/ftune/internal/half"
)

// Pure-Go references for the vector kernels. They are always compiled, are
// what ImplGo runs, and are what every assembly version is tested against.
// Reductions accumulate in float64 so the reference is the accurate side of
// every comparison; elementwise float32 products are wrapped in float32()
// so that no compiler fuses them into an FMA (the Go spec allows fusion
// except across an explicit conversion) and results are the same on every
// architecture.

// DotRef returns sum x[i]*y[i], accumulated in float64.
func DotRef(x, y []float32) float32 {
	y = y[:len(x)]
	var s float64
	for i, v := range x {
		s += float64(v) * float64(y[i])
	}
	return float32(s)
}

// AxpyRef computes y[i] += alpha*x[i].
func AxpyRef(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += float32(alpha * v)
	}
}

// ScaleRef computes x[i] *= alpha.
func ScaleRef(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

// scaleToRef computes dst[i] = x[i]*alpha.
func scaleToRef(dst, x []float32, alpha float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = v * alpha
	}
}

// AddRef computes dst[i] = x[i]+y[i].
func AddRef(dst, x, y []float32) {
	dst, y = dst[:len(x)], y[:len(x)]
	for i, v := range x {
		dst[i] = v + y[i]
	}
}

// MulRef computes dst[i] = x[i]*y[i].
func MulRef(dst, x, y []float32) {
	dst, y = dst[:len(x)], y[:len(x)]
	for i, v := range x {
		dst[i] = v * y[i]
	}
}

// SumRef returns sum x[i], accumulated in float64.
func SumRef(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return float32(s)
}

// MaxRef returns the largest element, NaN if any element is NaN and -Inf
// for an empty slice.
func MaxRef(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v != v {
			return v
		}
		if v > m {
			m = v
		}
	}
	return m
}

// Constants of the float32 exp shared by every implementation (Cephes
// expf): exp(x) = 2^n * exp(r), n = round(x*log2(e)), r = x - n*ln2 with
// ln2 split in two (expC1 has 9 significant bits, so n*expC1 is exact and
// r loses nothing), then exp(r) on [-ln2/2, ln2/2] by a degree-7 polynomial
// 1 + r + r^2*P(r). Inputs are clamped to [expLo, expHi] first: below
// -104 the result rounds to 0 even as a subnormal, above 89 it overflows.
// 2^n is applied as two factors 2^(n>>1) * 2^(n-n>>1) so subnormal results
// (x in [-104, -87.3]) round once and overflow to +Inf happens only when
// the true result overflows.
const (
	expLog2e = float32(1.44269504088896341)
	expC1    = float32(0.693359375)
	expC2    = float32(-2.12194440e-4)
	expP0    = float32(1.9875691500e-4)
	expP1    = float32(1.3981999507e-3)
	expP2    = float32(8.3334519073e-3)
	expP3    = float32(4.1665795894e-2)
	expP4    = float32(1.6666665459e-1)
	expP5    = float32(5.0000001201e-1)
	expHi    = float32(89)
	expLo    = float32(-104)
	expRound = float32(1 << 23 * 1.5)
)

// expf is the scalar form of the vector exp (no FMA, so it can differ from
// the assembly by an ulp).
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x < expLo:
		x = expLo
	case x > expHi:
		x = expHi
	}
	// Adding and subtracting 1.5*2^23 rounds to the nearest integer, ties
	// to even (|x*log2e| < 151 is far inside the 2^22 this needs).
	fn := float32(float32(x*expLog2e)+expRound) - expRound
	r := x - float32(fn*expC1)
	r = r - float32(fn*expC2)
	p := float32(expP0*r) + expP1
	p = float32(p*r) + expP2
	p = float32(p*r) + expP3
	p = float32(p*r) + expP4
	p = float32(p*r) + expP5
	y := float32(float32(p*float32(r*r))+r) + 1
	n := int32(fn)
	n1 := n >> 1
	n2 := n - n1
	y *= math.Float32frombits(uint32(n1+127) << 23)
	return y * math.Float32frombits(uint32(n2+127)<<23)
}

// ExpRef computes dst[i] = exp(x[i]) with the same polynomial as the
// assembly (see expf).
func ExpRef(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = expf(v)
	}
}

// expShiftSumRef computes dst[i] = exp(x[i]-shift) and returns their sum.
func expShiftSumRef(dst, x []float32, shift float32) float32 {
	dst = dst[:len(x)]
	var s float64
	for i, v := range x {
		e := expf(v - shift)
		dst[i] = e
		s += float64(e)
	}
	return float32(s)
}

// expSumRef returns sum exp(x[i]-shift) without storing the terms.
func expSumRef(x []float32, shift float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(expf(v - shift))
	}
	return float32(s)
}

// siluf is x*sigmoid(x) written as x/(1+exp(-x)), the form PyTorch's CPU
// kernel uses; silu(-Inf) is therefore NaN (-Inf/Inf), as in PyTorch.
func siluf(x float32) float32 {
	return x / (1 + expf(-x))
}

// SiluRef computes dst[i] = x[i]*sigmoid(x[i]).
func SiluRef(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = siluf(v)
	}
}

// SwiGLURef computes dst[i] = silu(gate[i])*up[i].
func SwiGLURef(dst, gate, up []float32) {
	dst, up = dst[:len(gate)], up[:len(gate)]
	for i, g := range gate {
		dst[i] = siluf(g) * up[i]
	}
}

// SwiGLUBackwardRef is SwiGLUBackward on scalar code.
func SwiGLUBackwardRef(dg, du, dy, gate, up []float32) {
	n := len(dy)
	dg, du, gate, up = dg[:n], du[:n], gate[:n], up[:n]
	for i, d := range dy {
		g := gate[i]
		s := 1 / (1 + expf(-g))
		du[i] = d * g * s
		dg[i] = d * up[i] * s * (1 + g*(1-s))
	}
}

// subShiftRef computes dst[i] = (x[i]-a)-b, two roundings in that order.
func subShiftRef(dst, x []float32, a, b float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = (v - a) - b
	}
}

// scaleMulRef computes dst[i] = (x[i]*s)*w[i].
func scaleMulRef(dst, x, w []float32, s float32) {
	dst, w = dst[:len(x)], w[:len(x)]
	for i, v := range x {
		dst[i] = float32(v*s) * w[i]
	}
}

// SoftmaxRowRef is SoftmaxRow on the reference kernels.
func SoftmaxRowRef(dst, x []float32) { softmaxRow(&vecGo, dst, x) }

// LogSoftmaxRowRef is LogSoftmaxRow on the reference kernels.
func LogSoftmaxRowRef(dst, x []float32) { logSoftmaxRow(&vecGo, dst, x) }

// RMSNormRowRef is RMSNormRow on the reference kernels.
func RMSNormRowRef(dst, x, weight []float32, eps float32) float32 {
	return rmsNormRow(&vecGo, dst, x, weight, eps)
}

// BF16ToF32Ref widens bfloat16 bit patterns to float32 (exact).
func BF16ToF32Ref(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = half.BF16ToF32(v)
	}
}

// F32ToBF16Ref rounds float32 to bfloat16 with half.F32ToBF16, the one
// rounding of the Go code (to nearest even; every NaN becomes the quiet NaN
// 0x7FC0, which is what PyTorch's c10::BFloat16 does).
func F32ToBF16Ref(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = half.F32ToBF16(v)
	}
}

// Constants of the tanh-based kernels (Gemma): tanh(z) = 2σ(2z) − 1, so
// c·tanh(x/c) = c − 2c/(1 + e^{2x/c}), and gelu_tanh(g) = g·σ(2v) with
// v = √(2/π)·(g + 0.044715·g³).
const (
	geluC     = float32(0.7978845608028654)  // √(2/π)
	geluNeg2C = float32(-1.5957691216057308) // −2·√(2/π): σ(2v) = 1/(1 + e^{−2v})
	geluA     = float32(0.044715)
	geluA3    = float32(3 * 0.044715)
	// geluClamp bounds g in the derivative's 2·g·σ·(1−σ)·v' term: beyond
	// it σ is exactly 0 or 1 in float32, so the term is 0 either way, and
	// the clamp keeps v' (which overflows past |g| ≈ 5e19) and 2g finite:
	// no 0·∞ NaN for huge or infinite g.
	geluClamp = float32(1e4)
	// softcapSmall: below |x/c| = 0.3, c − 2c/(1 + e^{2x/c}) cancels (its
	// absolute error is a few ulps of c, far more than x's own rounding
	// when |x| ≪ c), so tanh's odd Taylor series to u¹¹ is used there
	// (the next term is below 2e-9 relative).
	softcapSmall = float32(0.3)
	softcapT1    = float32(-1.0 / 3)
	softcapT2    = float32(2.0 / 15)
	softcapT3    = float32(-17.0 / 315)
	softcapT4    = float32(62.0 / 2835)
	softcapT5    = float32(-1382.0 / 155925)
)

// softcapf is c·tanh(x/c) as every implementation computes it, given
// inv = 1/c, k = 2/c and c2 = 2c. The assembly evaluates the polynomial
// with FMA, the only difference besides exp's.
func softcapf(x, c, inv, k, c2 float32) float32 {
	u := x * inv
	if u > -softcapSmall && u < softcapSmall {
		u2 := u * u
		p := float32(softcapT5*u2) + softcapT4
		p = float32(p*u2) + softcapT3
		p = float32(p*u2) + softcapT2
		p = float32(p*u2) + softcapT1
		p = float32(p*u2) + 1
		return x * p
	}
	return c - c2/(1+expf(x*k))
}

// SoftcapRef computes dst[i] = c·tanh(x[i]/c).
func SoftcapRef(dst, x []float32, c float32) {
	dst = dst[:len(x)]
	inv, k, c2 := 1/c, 2/c, c+c
	for i, v := range x {
		dst[i] = softcapf(v, c, inv, k, c2)
	}
}

// SoftcapBackwardRef computes dx[i] = dy[i]·(1 − (y[i]/c)²), 0 where
// y[i] < −c (a masked attention score, −Inf).
func SoftcapBackwardRef(dx, dy, y []float32, c float32) {
	dx, dy = dx[:len(y)], dy[:len(y)]
	inv := 1 / c
	for i, v := range y {
		if v < -c {
			dx[i] = 0
			continue
		}
		t := v * inv
		dx[i] = dy[i] * (1 - float32(t*t))
	}
}

// geluSigmoid is σ(2v) = 1/(1 + e^{−2v}), v = √(2/π)·(g + 0.044715·g³):
// gelu_tanh(g) = g·geluSigmoid(g).
func geluSigmoid(g float32) float32 {
	// Converted so that no compiler fuses the product into the sum below.
	a := float32(float32(float32(geluA*g)*g) * g)
	return 1 / (1 + expf(float32(geluNeg2C*(g+a))))
}

// GeGLURef computes dst[i] = gelu_tanh(gate[i])·up[i].
func GeGLURef(dst, gate, up []float32) {
	dst, up = dst[:len(gate)], up[:len(gate)]
	for i, g := range gate {
		dst[i] = float32(g*geluSigmoid(g)) * up[i]
	}
}

// GeGLUBackwardRef computes, with s = σ(2v): du = (dy·g)·s and
// dg = (dy·up)·(s + 2g·s·(1−s)·v'), v' = √(2/π)·(1 + 3·0.044715·g²), g
// clamped to ±geluClamp in the second term.
func GeGLUBackwardRef(dg, du, dy, gate, up []float32) {
	n := len(dy)
	dg, du, gate, up = dg[:n], du[:n], gate[:n], up[:n]
	for i, d := range dy {
		g := gate[i]
		s := geluSigmoid(g)
		du[i] = float32(d*g) * s
		gc := min(max(g, -geluClamp), geluClamp)
		dv := geluC * (1 + float32(float32(geluA3*gc)*gc))
		t := float32(float32(float32(float32(gc+gc)*s)*(1-s)) * dv)
		dg[i] = float32(d*up[i]) * (s + t)
	}
}
