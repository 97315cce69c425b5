package asm

// vecBlocks holds assembly routines that process only the first
// len - len%w elements of their slices (whole vectors); withTails finishes
// the remaining < w elements with the reference code. This keeps every tail
// in one place instead of three assembly dialects; a tail element can then
// differ from the same input in the body by the reference's rounding (an
// ulp for exp, none for the exact kernels).
type vecBlocks struct {
	w           int
	dot         func(x, y []float32) float32
	axpy        func(alpha float32, x, y []float32)
	scaleTo     func(dst, x []float32, alpha float32)
	add         func(dst, x, y []float32)
	mul         func(dst, x, y []float32)
	sum         func(x []float32) float32
	max         func(x []float32) float32
	expShiftSum func(dst, x []float32, shift float32) float32
	expSum      func(x []float32, shift float32) float32
	silu        func(dst, x []float32)
	swiglu      func(dst, gate, up []float32)
	subShift    func(dst, x []float32, a, b float32)
	scaleMul    func(dst, x, w []float32, s float32)
	bf16ToF32   func(dst []float32, src []uint16)
	f32ToBF16   func(dst []uint16, src []float32)
}

func (b *vecBlocks) withTails() *vecImpl {
	w := b.w
	body := func(n int) int { return n - n%w }
	return &vecImpl{
		dot: func(x, y []float32) float32 {
			n := body(len(x))
			return b.dot(x[:n], y[:n]) + DotRef(x[n:], y[n:])
		},
		axpy: func(alpha float32, x, y []float32) {
			n := body(len(x))
			b.axpy(alpha, x[:n], y[:n])
			AxpyRef(alpha, x[n:], y[n:])
		},
		scaleTo: func(dst, x []float32, alpha float32) {
			n := body(len(x))
			b.scaleTo(dst[:n], x[:n], alpha)
			scaleToRef(dst[n:], x[n:], alpha)
		},
		add: func(dst, x, y []float32) {
			n := body(len(x))
			b.add(dst[:n], x[:n], y[:n])
			AddRef(dst[n:], x[n:], y[n:])
		},
		mul: func(dst, x, y []float32) {
			n := body(len(x))
			b.mul(dst[:n], x[:n], y[:n])
			MulRef(dst[n:], x[n:], y[n:])
		},
		sum: func(x []float32) float32 {
			n := body(len(x))
			return b.sum(x[:n]) + SumRef(x[n:])
		},
		max: func(x []float32) float32 {
			n := body(len(x))
			// the builtin max returns NaN if either side is NaN.
			return max(b.max(x[:n]), MaxRef(x[n:]))
		},
		expShiftSum: func(dst, x []float32, shift float32) float32 {
			n := body(len(x))
			return b.expShiftSum(dst[:n], x[:n], shift) + expShiftSumRef(dst[n:], x[n:], shift)
		},
		expSum: func(x []float32, shift float32) float32 {
			n := body(len(x))
			return b.expSum(x[:n], shift) + expSumRef(x[n:], shift)
		},
		silu: func(dst, x []float32) {
			n := body(len(x))
			b.silu(dst[:n], x[:n])
			SiluRef(dst[n:], x[n:])
		},
		swiglu: func(dst, gate, up []float32) {
			n := body(len(gate))
			b.swiglu(dst[:n], gate[:n], up[:n])
			SwiGLURef(dst[n:], gate[n:], up[n:])
		},
		subShift: func(dst, x []float32, a, c float32) {
			n := body(len(x))
			b.subShift(dst[:n], x[:n], a, c)
			subShiftRef(dst[n:], x[n:], a, c)
		},
		scaleMul: func(dst, x, wt []float32, s float32) {
			n := body(len(x))
			b.scaleMul(dst[:n], x[:n], wt[:n], s)
			scaleMulRef(dst[n:], x[n:], wt[n:], s)
		},
		bf16ToF32: func(dst []float32, src []uint16) {
			n := body(len(src))
			b.bf16ToF32(dst[:n], src[:n])
			BF16ToF32Ref(dst[n:], src[n:])
		},
		f32ToBF16: func(dst []uint16, src []float32) {
			n := body(len(src))
			b.f32ToBF16(dst[:n], src[:n])
			F32ToBF16Ref(dst[n:], src[n:])
		},
	}
}
