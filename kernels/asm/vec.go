package asm

import (
	"fmt"
	"math"
)

// vecImpl is one implementation of the vector kernels. Every function takes
// slices of equal length (the public wrappers check and trim them).
type vecImpl struct {
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
	swigluBwd   func(dg, du, dy, gate, up []float32)
	softcap     func(dst, x []float32, c float32)
	softcapBwd  func(dx, dy, y []float32, c float32)
	geglu       func(dst, gate, up []float32)
	gegluBwd    func(dg, du, dy, gate, up []float32)
	subShift    func(dst, x []float32, a, b float32)
	scaleMul    func(dst, x, w []float32, s float32)
	bf16ToF32   func(dst []float32, src []uint16)
	f32ToBF16   func(dst []uint16, src []float32)
}

var vecGo = vecImpl{
	dot: DotRef, axpy: AxpyRef, scaleTo: scaleToRef, add: AddRef, mul: MulRef,
	sum: SumRef, max: MaxRef, expShiftSum: expShiftSumRef, expSum: expSumRef,
	silu: SiluRef, swiglu: SwiGLURef, swigluBwd: SwiGLUBackwardRef, subShift: subShiftRef, scaleMul: scaleMulRef,
	softcap: SoftcapRef, softcapBwd: SoftcapBackwardRef, geglu: GeGLURef, gegluBwd: GeGLUBackwardRef,
	bf16ToF32: BF16ToF32Ref, f32ToBF16: F32ToBF16Ref,
}

// vec is the implementation the public functions dispatch to.
var vec = vecGo

// vecImplFor returns the kernels of impl; vecArch (one per build, see
// vec_amd64.go, vec_arm64.go, vec_other.go) lists the assembly ones.
func vecImplFor(impl Impl) *vecImpl {
	if v, ok := vecArch[impl]; ok {
		return v
	}
	return &vecGo
}

func init() {
	registerImpl(func(impl Impl) { vec = *vecImplFor(impl) })
}

// Lengths are the caller's contract (as in BLAS): a mismatch is a bug in
// ftune, not bad user input, and the assembly must never read past a slice,
// so it panics with the kernel and the lengths.
func checkLen(kernel string, want int, got ...int) {
	for _, g := range got {
		if g != want {
			panic(fmt.Sprintf("asm.%s: length mismatch: %d != %d", kernel, g, want))
		}
	}
}

// Dot returns sum x[i]*y[i]. The assembly keeps P independent float32
// partial sums (P = 32 AVX2, 64 AVX-512, 16 NEON) fed by FMA and adds them
// pairwise, so to first order the error is at most
// (len/P + log2(P) + 5) * 2^-24 * sum |x[i]*y[i]| (TestVecKernels checks
// this bound); the Go version accumulates in float64.
func Dot(x, y []float32) float32 {
	checkLen("Dot", len(x), len(y))
	return vec.dot(x, y)
}

// Axpy computes y[i] += alpha*x[i] (one rounding per element with FMA).
func Axpy(alpha float32, x, y []float32) {
	checkLen("Axpy", len(x), len(y))
	vec.axpy(alpha, x, y)
}

// Scale computes x[i] *= alpha.
func Scale(alpha float32, x []float32) { vec.scaleTo(x, x, alpha) }

// Add computes dst[i] = x[i]+y[i]; dst may be x or y (not a shifted view).
func Add(dst, x, y []float32) {
	checkLen("Add", len(x), len(y), len(dst))
	vec.add(dst, x, y)
}

// Mul computes dst[i] = x[i]*y[i]; dst may be x or y (not a shifted view).
func Mul(dst, x, y []float32) {
	checkLen("Mul", len(x), len(y), len(dst))
	vec.mul(dst, x, y)
}

// Sum returns sum x[i], with the same partial sums and error bound as Dot.
func Sum(x []float32) float32 { return vec.sum(x) }

// Max returns the largest element; NaN if any element is NaN; -Inf if x is
// empty.
func Max(x []float32) float32 { return vec.max(x) }

// Exp computes dst[i] = exp(x[i]) (dst may be x). The maximum relative
// error against math.Exp over x in [-87, 88] is 8.3e-8 = 1.4*2^-24, under
// one ulp of the result (measured on every 8th float32 of the range, all
// implementations; TestExpAccuracy keeps it). Results are subnormal down
// to -103.97 and 0 below, +Inf above 88.72; exp(NaN) is NaN.
func Exp(dst, x []float32) {
	checkLen("Exp", len(x), len(dst))
	vec.expShiftSum(dst, x, 0)
}

// ExpShiftSum computes dst[i] = exp(x[i]-shift) (dst may be x), with Exp's
// accuracy for the shifted value, and returns the float32 sum of the
// results: the exponentiate-and-normalise step of a softmax in one pass.
func ExpShiftSum(dst, x []float32, shift float32) float32 {
	checkLen("ExpShiftSum", len(x), len(dst))
	return vec.expShiftSum(dst, x, shift)
}

// SubShift computes dst[i] = (x[i]-a)-b, two roundings in that order (dst
// may be x).
func SubShift(dst, x []float32, a, b float32) {
	checkLen("SubShift", len(x), len(dst))
	vec.subShift(dst, x, a, b)
}

// ScaleMul computes dst[i] = (x[i]*s)*w[i], two roundings in that order
// (dst may be x or w).
func ScaleMul(dst, x, w []float32, s float32) {
	checkLen("ScaleMul", len(x), len(w), len(dst))
	vec.scaleMul(dst, x, w, s)
}

// Silu computes dst[i] = x[i]/(1+exp(-x[i])) (dst may be x), within 1.7e-7
// relative of the float64 value. Like PyTorch's CPU kernel, silu(-Inf) is
// NaN.
func Silu(dst, x []float32) {
	checkLen("Silu", len(x), len(dst))
	vec.silu(dst, x)
}

// SwiGLU computes dst[i] = silu(gate[i])*up[i] (dst may be gate or up).
func SwiGLU(dst, gate, up []float32) {
	checkLen("SwiGLU", len(gate), len(up), len(dst))
	vec.swiglu(dst, gate, up)
}

// SwiGLUBackward computes the gradients of dst = silu(gate)·up given dy:
// with σ = 1/(1+exp(−gate)), du = dy·gate·σ and dg = dy·up·σ·(1+gate·(1−σ)),
// rounded in that order, within a few ulp of SwiGLUBackwardRef (its exp).
func SwiGLUBackward(dg, du, dy, gate, up []float32) {
	checkLen("SwiGLUBackward", len(dy), len(dg), len(du), len(gate), len(up))
	vec.swigluBwd(dg, du, dy, gate, up)
}

// Softcap computes dst[i] = c·tanh(x[i]/c) (dst may be x; c > 0 and
// finite, which the caller checks): tanh(u) = 1 − 2/(1 + e^{2u}) through
// Exp where |x/c| ≥ 0.3, tanh's Taylor series below (see softcapf). Within
// 4 ulps of SoftcapRef below 0.3 and 12·2⁻²⁴·c absolute above (exp's 3 ulps
// and two roundings on a quotient up to 2c: TestSoftcapKernels). Large
// |x| and ±Inf give exactly ±c (e^{2x/c} overflows to +Inf or underflows
// to 0), never NaN; NaN stays NaN.
func Softcap(dst, x []float32, c float32) {
	checkLen("Softcap", len(x), len(dst))
	vec.softcap(dst, x, c)
}

// SoftcapBackward computes dx[i] = dy[i]·(1 − (y[i]/c)²) from Softcap's
// output y (dx may be dy), and 0 where y[i] < −c: a masked attention score
// (−Inf) has no gradient. Bit-identical to SoftcapBackwardRef (the same
// roundings, no FMA).
func SoftcapBackward(dx, dy, y []float32, c float32) {
	checkLen("SoftcapBackward", len(y), len(dx), len(dy))
	vec.softcapBwd(dx, dy, y, c)
}

// GeGLU computes dst[i] = gelu_tanh(gate[i])·up[i] (dst may be gate or
// up), GELU with PyTorch's tanh approximation written as
// g·σ(2·√(2/π)·(g + 0.044715·g³)), within 7 ulps of GeGLURef (exp's 3,
// then 1 + e, the division and two products). gelu(+Inf) = +Inf and, as
// PyTorch's formula gives, gelu(−Inf) is NaN; finite g never gives NaN.
func GeGLU(dst, gate, up []float32) {
	checkLen("GeGLU", len(gate), len(up), len(dst))
	vec.geglu(dst, gate, up)
}

// GeGLUBackward computes the gradients of dst = gelu_tanh(gate)·up given
// dy (see GeGLUBackwardRef for the formula and its rounding order); dg
// stays finite for every finite or infinite gate. dg and du must not
// overlap the inputs (du is stored before up is read).
func GeGLUBackward(dg, du, dy, gate, up []float32) {
	checkLen("GeGLUBackward", len(dy), len(dg), len(du), len(gate), len(up))
	vec.gegluBwd(dg, du, dy, gate, up)
}

// SoftmaxRow computes dst = exp(x-max(x)) / sum(exp(x-max(x))); dst may be
// x. -Inf entries (masking) give 0; a row that is all -Inf, or holds +Inf
// or NaN, gives NaN everywhere, as PyTorch does.
func SoftmaxRow(dst, x []float32) {
	checkLen("SoftmaxRow", len(x), len(dst))
	softmaxRow(&vec, dst, x)
}

func softmaxRow(v *vecImpl, dst, x []float32) {
	if len(x) == 0 {
		return
	}
	m := v.max(x)
	s := v.expShiftSum(dst, x, m)
	v.scaleTo(dst, dst, 1/s)
}

// LogSoftmaxRow computes dst = (x-max(x)) - log(sum(exp(x-max(x)))); dst
// may be x. Subtracting the max first keeps x-max exact near the max.
func LogSoftmaxRow(dst, x []float32) {
	checkLen("LogSoftmaxRow", len(x), len(dst))
	logSoftmaxRow(&vec, dst, x)
}

func logSoftmaxRow(v *vecImpl, dst, x []float32) {
	if len(x) == 0 {
		return
	}
	m := v.max(x)
	s := v.expSum(x, m)
	v.subShift(dst, x, m, float32(math.Log(float64(s))))
}

// RMSNormRow computes dst[i] = (x[i]*invRMS)*weight[i] with invRMS =
// 1/sqrt(mean(x^2)+eps) and returns invRMS (the backward pass needs it).
// A nil weight means all ones; dst may be x. For an empty row nothing is
// written and 1/sqrt(eps) is returned.
func RMSNormRow(dst, x, weight []float32, eps float32) (invRMS float32) {
	checkLen("RMSNormRow", len(x), len(dst))
	if weight != nil {
		checkLen("RMSNormRow weight", len(x), len(weight))
	}
	return rmsNormRow(&vec, dst, x, weight, eps)
}

func rmsNormRow(v *vecImpl, dst, x, weight []float32, eps float32) float32 {
	var mean float32
	if len(x) > 0 {
		mean = v.dot(x, x) / float32(len(x))
	}
	inv := float32(1 / math.Sqrt(float64(mean+eps)))
	if weight == nil {
		v.scaleTo(dst, x, inv)
	} else {
		v.scaleMul(dst, x, weight, inv)
	}
	return inv
}

// BF16ToF32 widens bfloat16 bit patterns to float32 (exact).
func BF16ToF32(dst []float32, src []uint16) {
	checkLen("BF16ToF32", len(src), len(dst))
	vec.bf16ToF32(dst, src)
}

// F32ToBF16 rounds float32 to bfloat16, to nearest even; every NaN becomes
// the quiet NaN 0x7FC0 as in PyTorch. Subnormals are kept (no flush).
func F32ToBF16(dst []uint16, src []float32) {
	checkLen("F32ToBF16", len(src), len(dst))
	vec.f32ToBF16(dst, src)
}
