package ptxsim

import (
	"math"

	"github.com/ftune/ftune/internal/half"
)

// Rounding modes of float results.
const (
	rn = iota // nearest even
	rz        // toward zero
	rm        // toward -inf
	rp        // toward +inf
)

// twoSum returns s = fl(a+b) and the exact error e with s+e == a+b.
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	e = (a - (s - bb)) + (b - bb)
	return
}

// roundF32 rounds the exact value s+e (s a float64, e its tiny remainder,
// |e| <= ulp(s)/2) to float32 in the given mode. Rounding s alone would
// round twice; e breaks ties and decides directed roundings.
func roundF32(s, e float64, mode int) float32 {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return float32(s)
	}
	f := float32(s)
	if math.IsInf(float64(f), 0) && mode == rn {
		return f
	}
	d := float64(f) - s // exact (f and s are close)
	switch mode {
	case rn:
		if e == 0 || d == 0 {
			return f
		}
		// s was a tie between f and its neighbour g: e decides.
		g := math.Nextafter32(f, float32(math.Copysign(math.Inf(1), s-float64(f))))
		if s != float64(f) && math.Abs(float64(g)-s) == math.Abs(d) {
			if (e > 0) == (float64(g) > float64(f)) {
				return g
			}
		}
		return f
	case rm:
		if d > e || math.IsInf(float64(f), 1) {
			return math.Nextafter32(f, float32(math.Inf(-1)))
		}
		return f
	case rp:
		if d < e || math.IsInf(float64(f), -1) {
			return math.Nextafter32(f, float32(math.Inf(1)))
		}
		return f
	default: // rz: down for positive values, up for negative ones
		if s > 0 {
			return roundF32(s, e, rm)
		}
		return roundF32(s, e, rp)
	}
}

// fmaRN is a*b+c rounded once to float32, to nearest. The float64 sum
// rounds a second time only when it lands exactly on a float32 midpoint
// (low 29 mantissa bits 1000...0) with a nonzero remainder; elsewhere its
// float32 rounding is the correct one, and that is the fast path; so is an
// exact zero.
func fmaRN(a, b, c float32) float32 {
	s := float64(a)*float64(b) + float64(c)
	u := math.Float64bits(s)
	if u&0x1FFFFFFF != 0x10000000 && (u>>52)&0x7FF >= 1023-126 {
		return float32(s)
	}
	if s == 0 {
		// a*b is exact in float64, so a sum rounding to zero is exactly
		// zero, with the sign IEEE gives it in either precision (fmaF32's
		// s == 0 && e == 0 case, to nearest).
		return float32(s)
	}
	return fmaF32(a, b, c, rn)
}

// fmaF32 is a*b+c rounded once to float32.
func fmaF32(a, b, c float32, mode int) float32 {
	p := float64(a) * float64(b) // exact
	s, e := twoSum(p, float64(c))
	if s == 0 && e == 0 {
		if mode == rm {
			// exact zero sum of opposite signs is -0 in rm
			if p == 0 && c == 0 {
				return float32(p + float64(c))
			}
			return float32(math.Copysign(0, -1))
		}
		return float32(p + float64(c))
	}
	return roundF32(s, e, mode)
}

// ftz32 flushes a float32 subnormal to a zero of the same sign.
func ftz32(f float32) float32 {
	if b := math.Float32bits(f); b&0x7F800000 == 0 {
		return math.Float32frombits(b & 0x80000000)
	}
	return f
}

// bf16 conversions. Round to nearest even is ftune's one rounding
// (half.F32ToBF16); only the NaN differs: cvt.rn.bf16.f32 gives the PTX
// canonical NaN 0x7FFF where half (and PyTorch) give 0x7FC0.
func f32ToBF16(f float32) uint16 {
	if f != f {
		return 0x7FFF
	}
	return half.F32ToBF16(f)
}

func f32ToBF16Mode(f float32, mode int) uint16 {
	if mode == rn {
		return f32ToBF16(f)
	}
	u := math.Float32bits(f)
	if u&0x7FFFFFFF > 0x7F800000 {
		return 0x7FFF
	}
	t := uint16(u >> 16)
	if u&0xFFFF == 0 {
		return t
	}
	neg := u>>31 != 0
	switch {
	case mode == rz, mode == rm && !neg, mode == rp && neg:
		return t
	}
	return t + 1
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// f16 conversions (IEEE binary16).
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int(h>>10) & 0x1F
	man := uint32(h) & 0x3FF
	switch {
	case exp == 0x1F:
		return math.Float32frombits(sign | 0x7F800000 | man<<13)
	case exp == 0:
		f := float32(man) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | man<<13)
}

// f64ToF16 rounds to nearest even.
func f64ToF16(f float64) uint16 {
	var sign uint16
	if math.Signbit(f) {
		sign = 0x8000
		f = -f
	}
	switch {
	case math.IsNaN(f):
		return 0x7FFF
	case f >= 65520:
		return sign | 0x7C00
	case f <= math.Ldexp(1, -25):
		return sign // the tie at 2^-25 rounds to even (zero)
	}
	fr, e := math.Frexp(f) // f = fr * 2^e, fr in [0.5,1)
	if e-1 < -14 {
		// subnormal: units of 2^-24
		q := math.RoundToEven(f * (1 << 24))
		return sign | uint16(q)
	}
	m := math.RoundToEven(fr * 2048) // 11 significant bits
	if m == 2048 {
		m = 1024
		e++
	}
	if e-1 > 15 {
		return sign | 0x7C00
	}
	return sign | uint16(e-1+15)<<10 | uint16(m)&0x3FF
}
