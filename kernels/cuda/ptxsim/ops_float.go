package ptxsim

import "math"

func getF32(r []uint64, s int32) float32    { return math.Float32frombits(uint32(r[s])) }
func putF32(r []uint64, s int32, f float32) { r[s] = uint64(math.Float32bits(f)) }
func getF64(r []uint64, s int32) float64    { return math.Float64frombits(r[s]) }
func putF64(r []uint64, s int32, f float64) { r[s] = math.Float64bits(f) }

// The hot f32 handlers, without modifiers.
func opAddF32(t *thread, in *inst) { r := t.r; putF32(r, in.d, getF32(r, in.a)+getF32(r, in.b)) }
func opSubF32(t *thread, in *inst) { r := t.r; putF32(r, in.d, getF32(r, in.a)-getF32(r, in.b)) }
func opMulF32(t *thread, in *inst) { r := t.r; putF32(r, in.d, getF32(r, in.a)*getF32(r, in.b)) }
func opFmaF32(t *thread, in *inst) {
	r := t.r
	a, b, c := getF32(r, in.a), getF32(r, in.b), getF32(r, in.c)
	// fmaRN's fast path, inlined (fmaRN is too large to be)
	s := float64(a)*float64(b) + float64(c)
	if u := math.Float64bits(s); u&0x1FFFFFFF != 0x10000000 && (u>>52)&0x7FF >= 1023-126 {
		putF32(r, in.d, float32(s))
		return
	}
	putF32(r, in.d, fmaRN(a, b, c))
}
func opNegF32(t *thread, in *inst) { r := t.r; r[in.d] = (r[in.a] ^ 0x80000000) & 0xFFFFFFFF }
func opAbsF32(t *thread, in *inst) { r := t.r; r[in.d] = r[in.a] & 0x7FFFFFFF }
func opNegF64(t *thread, in *inst) { r := t.r; r[in.d] = r[in.a] ^ (1 << 63) }
func opAbsF64(t *thread, in *inst) { r := t.r; r[in.d] = r[in.a] &^ (1 << 63) }

// sat32 clamps to [0, 1]; NaN becomes 0.
func sat32(f float32) float32 {
	switch {
	case f != f || f < 0:
		return 0
	case f > 1:
		return 1
	}
	return f
}

func sat64(f float64) float64 {
	switch {
	case f != f || f < 0:
		return 0
	case f > 1:
		return 1
	}
	return f
}

// f32Op and f64Op build the handler of a float operation of up to three
// inputs, with .ftz (subnormal inputs and result flushed) and .sat. (One
// generic body would call its register access, flush and clamp through
// func values.)
func f32Op(n int, f func(a, b, c float32) float32, ftz, sat bool) handler {
	return func(t *thread, in *inst) {
		r := t.r
		a := getF32(r, in.a)
		var b, c float32
		if n > 1 {
			b = getF32(r, in.b)
		}
		if n > 2 {
			c = getF32(r, in.c)
		}
		if ftz {
			a, b, c = ftz32(a), ftz32(b), ftz32(c)
		}
		v := f(a, b, c)
		if ftz {
			v = ftz32(v)
		}
		if sat {
			v = sat32(v)
		}
		putF32(r, in.d, v)
	}
}

func f64Op(n int, f func(a, b, c float64) float64, ftz, sat bool) handler {
	return func(t *thread, in *inst) {
		r := t.r
		a := getF64(r, in.a)
		var b, c float64
		if n > 1 {
			b = getF64(r, in.b)
		}
		if n > 2 {
			c = getF64(r, in.c)
		}
		if ftz {
			a, b, c = ftz64(a), ftz64(b), ftz64(c)
		}
		v := f(a, b, c)
		if ftz {
			v = ftz64(v)
		}
		if sat {
			v = sat64(v)
		}
		putF64(r, in.d, v)
	}
}

// ftz64 flushes a float64 subnormal to a zero of the same sign.
func ftz64(f float64) float64 {
	if math.Float64bits(f)&(0x7FF<<52) == 0 {
		return math.Copysign(0, f)
	}
	return f
}

// minF/maxF: PTX returns the other operand when one is NaN, NaN when both.
func minF(a, b float64) float64 {
	switch {
	case a != a:
		return b
	case b != b:
		return a
	case a == b && a == 0:
		if math.Signbit(a) {
			return a
		}
		return b
	case a < b:
		return a
	}
	return b
}

func maxF(a, b float64) float64 {
	switch {
	case a != a:
		return b
	case b != b:
		return a
	case a == b && a == 0:
		if math.Signbit(a) {
			return b
		}
		return a
	case a > b:
		return a
	}
	return b
}

// nanMinMax wraps min/max with .NaN: a NaN operand gives NaN.
func nanMinMax(f func(a, b, c float32) float32) func(a, b, c float32) float32 {
	return func(a, b, c float32) float32 {
		if a != a || b != b {
			return float32(math.NaN())
		}
		return f(a, b, c)
	}
}

// f32Func returns the f32 function of a float opcode with its rounding mode,
// and its input count.
func f32Func(op string, mode int) (func(a, b, c float32) float32, int) {
	switch op {
	case "add":
		return func(a, b, _ float32) float32 { s, e := twoSum(float64(a), float64(b)); return roundF32(s, e, mode) }, 2
	case "sub":
		return func(a, b, _ float32) float32 { s, e := twoSum(float64(a), -float64(b)); return roundF32(s, e, mode) }, 2
	case "mul":
		return func(a, b, _ float32) float32 { return roundF32(float64(a)*float64(b), 0, mode) }, 2
	case "fma", "mad":
		return func(a, b, c float32) float32 { return fmaF32(a, b, c, mode) }, 3
	case "div":
		return func(a, b, _ float32) float32 {
			q := float64(a) / float64(b)
			if mode == rn {
				return float32(q)
			}
			// remainder sign decides the directed rounding
			e := -math.FMA(q, float64(b), -float64(a)) / float64(b)
			return roundF32(q, e, mode)
		}, 2
	case "min":
		return func(a, b, _ float32) float32 { return float32(minF(float64(a), float64(b))) }, 2
	case "max":
		return func(a, b, _ float32) float32 { return float32(maxF(float64(a), float64(b))) }, 2
	case "abs":
		return func(a, _, _ float32) float32 { return float32(math.Abs(float64(a))) }, 1
	case "neg":
		return func(a, _, _ float32) float32 { return -a }, 1
	case "sqrt":
		return func(a, _, _ float32) float32 {
			s := math.Sqrt(float64(a))
			if mode == rn {
				return float32(s)
			}
			return roundF32(s, -math.FMA(s, s, -float64(a))/(2*s), mode)
		}, 1
	case "rsqrt":
		return func(a, _, _ float32) float32 { return float32(1 / math.Sqrt(float64(a))) }, 1
	case "rcp":
		return func(a, _, _ float32) float32 {
			q := 1 / float64(a)
			if mode == rn {
				return float32(q)
			}
			return roundF32(q, -math.FMA(q, float64(a), -1)/float64(a), mode)
		}, 1
	case "ex2":
		return func(a, _, _ float32) float32 { return float32(math.Exp2(float64(a))) }, 1
	case "lg2":
		return func(a, _, _ float32) float32 { return float32(math.Log2(float64(a))) }, 1
	case "sin":
		return func(a, _, _ float32) float32 { return float32(math.Sin(float64(a))) }, 1
	case "cos":
		return func(a, _, _ float32) float32 { return float32(math.Cos(float64(a))) }, 1
	case "tanh":
		return func(a, _, _ float32) float32 { return float32(math.Tanh(float64(a))) }, 1
	}
	return nil, 0
}

func f64Func(op string) (func(a, b, c float64) float64, int) {
	switch op {
	case "add":
		return func(a, b, _ float64) float64 { return a + b }, 2
	case "sub":
		return func(a, b, _ float64) float64 { return a - b }, 2
	case "mul":
		return func(a, b, _ float64) float64 { return a * b }, 2
	case "fma", "mad":
		return math.FMA, 3
	case "div":
		return func(a, b, _ float64) float64 { return a / b }, 2
	case "min":
		return func(a, b, _ float64) float64 { return minF(a, b) }, 2
	case "max":
		return func(a, b, _ float64) float64 { return maxF(a, b) }, 2
	case "abs":
		return func(a, _, _ float64) float64 { return math.Abs(a) }, 1
	case "neg":
		return func(a, _, _ float64) float64 { return -a }, 1
	case "sqrt":
		return func(a, _, _ float64) float64 { return math.Sqrt(a) }, 1
	case "rsqrt":
		return func(a, _, _ float64) float64 { return 1 / math.Sqrt(a) }, 1
	case "rcp":
		return func(a, _, _ float64) float64 { return 1 / a }, 1
	case "ex2":
		return func(a, _, _ float64) float64 { return math.Exp2(a) }, 1
	case "lg2":
		return func(a, _, _ float64) float64 { return math.Log2(a) }, 1
	case "sin":
		return func(a, _, _ float64) float64 { return math.Sin(a) }, 1
	case "cos":
		return func(a, _, _ float64) float64 { return math.Cos(a) }, 1
	}
	return nil, 0
}
