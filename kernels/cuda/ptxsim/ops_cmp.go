package ptxsim

import (
	"fmt"
	"math"
)

// Comparison codes of setp/set.
const (
	cmpEq = iota
	cmpNe
	cmpLt
	cmpLe
	cmpGt
	cmpGe
	cmpEqu
	cmpNeu
	cmpLtu
	cmpLeu
	cmpGtu
	cmpGeu
	cmpNum
	cmpNan
)

var cmpCodes = map[string]int{
	"eq": cmpEq, "ne": cmpNe, "lt": cmpLt, "le": cmpLe, "gt": cmpGt, "ge": cmpGe,
	"lo": cmpLt, "ls": cmpLe, "hi": cmpGt, "hs": cmpGe,
	"equ": cmpEqu, "neu": cmpNeu, "ltu": cmpLtu, "leu": cmpLeu, "gtu": cmpGtu, "geu": cmpGeu,
	"num": cmpNum, "nan": cmpNan,
}

func cmpInt[T int64 | uint64](a, b T, c int) bool {
	switch c {
	case cmpEq:
		return a == b
	case cmpNe:
		return a != b
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	}
	return a >= b
}

// cmpFloat: ordered comparisons are false with a NaN operand, the
// unordered (u) ones true.
func cmpFloat(a, b float64, c int) bool {
	nan := a != a || b != b
	switch c {
	case cmpEq:
		return !nan && a == b
	case cmpNe:
		return !nan && a != b
	case cmpLt:
		return !nan && a < b
	case cmpLe:
		return !nan && a <= b
	case cmpGt:
		return !nan && a > b
	case cmpGe:
		return !nan && a >= b
	case cmpEqu:
		return nan || a == b
	case cmpNeu:
		return nan || a != b
	case cmpLtu:
		return nan || a < b
	case cmpLeu:
		return nan || a <= b
	case cmpGtu:
		return nan || a > b
	case cmpGeu:
		return nan || a >= b
	case cmpNum:
		return !nan
	}
	return nan
}

// setpFinish writes p = cmp BOOL c and q = !cmp BOOL c. in.n is the
// boolean op (0 none, 1 and, 2 or, 3 xor), in.c the predicate c, in.off 1
// when c is negated.
func setpFinish(t *thread, in *inst, v bool) {
	r := t.r
	p, q := v, !v
	if in.n != 0 {
		c := r[in.c] != 0
		if in.off != 0 {
			c = !c
		}
		switch in.n {
		case 1:
			p, q = p && c, q && c
		case 2:
			p, q = p || c, q || c
		case 3:
			p, q = p != c, q != c
		}
	}
	r[in.d] = b2u(p)
	if in.d2 >= 0 {
		r[in.d2] = b2u(q)
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func opSetpS(t *thread, in *inst) {
	r := t.r
	setpFinish(t, in, cmpInt(sx(r[in.a], in.w), sx(r[in.b], in.w), int(in.m)))
}
func opSetpU(t *thread, in *inst) {
	r := t.r
	setpFinish(t, in, cmpInt(r[in.a]&in.mask, r[in.b]&in.mask, int(in.m)))
}
func opSetpF32(t *thread, in *inst) {
	r := t.r
	setpFinish(t, in, cmpFloat(float64(getF32(r, in.a)), float64(getF32(r, in.b)), int(in.m)))
}
func opSetpF32Ftz(t *thread, in *inst) {
	r := t.r
	setpFinish(t, in, cmpFloat(float64(ftz32(getF32(r, in.a))), float64(ftz32(getF32(r, in.b))), int(in.m)))
}
func opSetpF64(t *thread, in *inst) {
	r := t.r
	setpFinish(t, in, cmpFloat(getF64(r, in.a), getF64(r, in.b), int(in.m)))
}

// Fast paths of the most common setp forms (no boolean op).
func opSetpLtS32(t *thread, in *inst) {
	r := t.r
	v := int32(r[in.a]) < int32(r[in.b])
	r[in.d] = b2u(v)
	if in.d2 >= 0 {
		r[in.d2] = b2u(!v)
	}
}

// ---- cvt ----

// cvtFunc builds the conversion from type src to type dst. irnd is the
// integer rounding (rni/rzi/rmi/rpi, -1 none), frnd the float rounding.
func cvtFunc(dst, src string, frnd, irnd int, sat, ftz bool) (func(uint64) uint64, error) {
	dk, sk := dst[0], src[0]
	dw, sw := typeSize(dst)*8, typeSize(src)*8
	isF := func(k byte, t string) bool { return k == 'f' || t == "bf16" }
	readF := func(v uint64) float64 {
		switch src {
		case "f64":
			return math.Float64frombits(v)
		case "f32":
			f := math.Float32frombits(uint32(v))
			if ftz {
				f = ftz32(f)
			}
			return float64(f)
		case "f16":
			return float64(f16ToF32(uint16(v)))
		case "bf16":
			return float64(bf16ToF32(uint16(v)))
		}
		return 0
	}
	readI := func(v uint64) (int64, uint64) {
		if sk == 's' {
			x := sx(v, uint8(sw))
			return x, uint64(x)
		}
		m := typeMask(src)
		return int64(v & m), v & m
	}
	switch {
	case isF(sk, src) && isF(dk, dst):
		return func(v uint64) uint64 {
			f := readF(v)
			if irnd >= 0 {
				f = roundInt(f, irnd)
			}
			if sat {
				f = sat64(f)
			}
			switch dst {
			case "f64":
				return math.Float64bits(f)
			case "f32":
				g := float32(f)
				if frnd != rn && irnd < 0 {
					g = roundF32(f, 0, frnd)
				}
				if ftz {
					g = ftz32(g)
				}
				return uint64(math.Float32bits(g))
			case "f16":
				return uint64(f64ToF16(f))
			}
			return uint64(f32ToBF16Mode(roundF32(f, 0, frnd), frnd))
		}, nil
	case isF(sk, src):
		if irnd < 0 {
			return nil, fmt.Errorf("cvt from %s to %s needs an integer rounding modifier", src, dst)
		}
		lo, hi := intRange(dk, dw)
		return func(v uint64) uint64 {
			f := roundInt(readF(v), irnd)
			if f != f {
				return 0
			}
			if dk == 's' {
				f = math.Max(math.Min(f, float64(hi)), float64(lo))
				if f >= 9.223372036854775807e18 {
					return uint64(math.MaxInt64) & typeMask(dst)
				}
				return uint64(int64(f)) & typeMask(dst)
			}
			if f <= 0 {
				return 0
			}
			if f >= float64(uint64(hi)) {
				return uint64(hi)
			}
			return uint64(f) & typeMask(dst)
		}, nil
	case isF(dk, dst):
		return func(v uint64) uint64 {
			i, u := readI(v)
			var f float64
			var g float32
			if sk == 's' {
				f, g = float64(i), float32(i)
			} else {
				f, g = float64(u), float32(u)
			}
			if sat {
				f, g = sat64(f), sat32(g)
			}
			switch dst {
			case "f64":
				return math.Float64bits(f)
			case "f32":
				return uint64(math.Float32bits(g))
			case "f16":
				return uint64(f64ToF16(f))
			}
			return uint64(f32ToBF16(g))
		}, nil
	}
	// int -> int
	lo, hi := intRange(dk, dw)
	mask := typeMask(dst)
	return func(v uint64) uint64 {
		i, u := readI(v)
		if sat {
			if sk == 's' {
				if i < lo {
					return uint64(lo) & mask
				}
				if hi >= 0 && i > hi && !(dk == 'u' && dw == 64) {
					return uint64(hi) & mask
				}
				if dk == 'u' && i < 0 {
					return 0
				}
			} else if u > uint64(hi) && !(dk == 'u' && dw == 64) {
				return uint64(hi) & mask
			}
		}
		return u & mask
	}, nil
}

// intRange is the range of an integer type (hi as int64; u64's is clamped).
func intRange(k byte, w int) (lo, hi int64) {
	if k == 's' {
		return -1 << (w - 1), 1<<(w-1) - 1
	}
	if w == 64 {
		return 0, -1 // all ones as uint64
	}
	return 0, 1<<w - 1
}

func roundInt(f float64, mode int) float64 {
	switch mode {
	case rn:
		return math.RoundToEven(f)
	case rz:
		return math.Trunc(f)
	case rm:
		return math.Floor(f)
	}
	return math.Ceil(f)
}

// cvtHandler applies in's conversion closure.
func cvtHandler(f func(uint64) uint64) handler {
	return func(t *thread, in *inst) { r := t.r; r[in.d] = f(r[in.a]) }
}

func opCvtU32U64(t *thread, in *inst) { r := t.r; r[in.d] = r[in.a] & 0xFFFFFFFF }
func opAndMask(t *thread, in *inst)   { r := t.r; r[in.d] = r[in.a] & in.mask }

// opCvtSatF32: cvt.sat.f32.f32 as cvtFunc computes it (clamped in float64).
func opCvtSatF32(t *thread, in *inst) {
	r := t.r
	r[in.d] = uint64(math.Float32bits(float32(sat64(float64(getF32(r, in.a))))))
}
func opCvtS64S32(t *thread, in *inst) { r := t.r; r[in.d] = uint64(int64(int32(r[in.a]))) }

// cvt.rn.bf16x2.f32 d, a, b: a to the upper half, b to the lower.
func opCvtBF16x2(t *thread, in *inst) {
	r := t.r
	r[in.d] = uint64(f32ToBF16(getF32(r, in.a)))<<16 | uint64(f32ToBF16(getF32(r, in.b)))
}
func opCvtF16x2(t *thread, in *inst) {
	r := t.r
	r[in.d] = uint64(f64ToF16(float64(getF32(r, in.a))))<<16 | uint64(f64ToF16(float64(getF32(r, in.b))))
}
