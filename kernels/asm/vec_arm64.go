//go:build !purego

package asm

// Assembly vector kernels for arm64: NEON, 4 floats per vector
// (vec_arm64.s, vec_exp_arm64.s), declared below. Each processes the whole vectors of its slices;
// vecBlocks.withTails does the rest.

// vecArch lists the assembly implementations this build has.
var vecArch = map[Impl]*vecImpl{
	ImplNEON: vecNEONBlocks.withTails(),
}

var vecNEONBlocks = vecBlocks{
	w: 4, dot: dotNEON, axpy: axpyNEON, scaleTo: scaleToNEON, add: addNEON, mul: mulNEON,
	sum: sumNEON, max: maxNEON, expShiftSum: expShiftSumNEON, expSum: expSumNEON,
	silu: siluNEON, swiglu: swigluNEON, subShift: subShiftNEON, scaleMul: scaleMulNEON,
	softcap: softcapNEON, softcapBwd: softcapBwdNEON, geglu: gegluNEON, gegluBwd: gegluBwdNEON,
	bf16ToF32: bf16ToF32NEON, f32ToBF16: f32ToBF16NEON,
}

// Declarations of the NEON routines in vec_arm64.s and vec_exp_arm64.s;
// each handles the first len - len%4 elements.

// dotNEON returns sum x[i]*y[i] in 4 vector accumulators.
//
//go:noescape
func dotNEON(x, y []float32) float32

// axpyNEON computes y[i] += alpha*x[i] with FMA.
//
//go:noescape
func axpyNEON(alpha float32, x, y []float32)

// scaleToNEON computes dst[i] = x[i]*alpha.
//
//go:noescape
func scaleToNEON(dst, x []float32, alpha float32)

// addNEON computes dst[i] = x[i]+y[i].
//
//go:noescape
func addNEON(dst, x, y []float32)

// mulNEON computes dst[i] = x[i]*y[i].
//
//go:noescape
func mulNEON(dst, x, y []float32)

// sumNEON returns sum x[i] in 4 vector accumulators.
//
//go:noescape
func sumNEON(x []float32) float32

// maxNEON returns max x[i], NaN if any is NaN, -Inf if empty.
//
//go:noescape
func maxNEON(x []float32) float32

// expShiftSumNEON computes dst[i] = exp(x[i]-shift) and returns their sum.
//
//go:noescape
func expShiftSumNEON(dst, x []float32, shift float32) float32

// expSumNEON returns sum exp(x[i]-shift).
//
//go:noescape
func expSumNEON(x []float32, shift float32) float32

// siluNEON computes dst[i] = x[i]/(1+exp(-x[i])).
//
//go:noescape
func siluNEON(dst, x []float32)

// swigluNEON computes dst[i] = silu(gate[i])*up[i].
//
//go:noescape
func swigluNEON(dst, gate, up []float32)

// subShiftNEON computes dst[i] = (x[i]-a)-b.
//
//go:noescape
func subShiftNEON(dst, x []float32, a, b float32)

// scaleMulNEON computes dst[i] = (x[i]*s)*w[i].
//
//go:noescape
func scaleMulNEON(dst, x, w []float32, s float32)

// bf16ToF32NEON computes dst[i] = float32frombits(uint32(src[i])<<16).
//
//go:noescape
func bf16ToF32NEON(dst []float32, src []uint16)

// f32ToBF16NEON rounds src[i] to bfloat16 to nearest even, NaN to 0x7fc0.
//
//go:noescape
func f32ToBF16NEON(dst []uint16, src []float32)

// Declarations of the NEON tanh-based routines in vec_tanh_arm64.s.

// softcapNEON computes dst[i] = c·tanh(x[i]/c).
//
//go:noescape
func softcapNEON(dst, x []float32, c float32)

// softcapBwdNEON computes dx[i] = dy[i]·(1 − (y[i]/c)²), 0 where y[i] < −c.
//
//go:noescape
func softcapBwdNEON(dx, dy, y []float32, c float32)

// gegluNEON computes dst[i] = gelu_tanh(gate[i])·up[i].
//
//go:noescape
func gegluNEON(dst, gate, up []float32)

// gegluBwdNEON is GeGLUBackward on whole vectors.
//
//go:noescape
func gegluBwdNEON(dg, du, dy, gate, up []float32)
