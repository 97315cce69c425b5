//go:build !purego

package asm

// Assembly vector kernels for amd64: AVX2+FMA, 8 floats per vector
// (vec_amd64.s, vec_exp_amd64.s) and AVX-512, 16 floats
// (vec_avx512_amd64.s, vec_exp_avx512_amd64.s), declared below. Each
// processes the whole vectors of its slices; vecBlocks.withTails does the
// rest.

// vecArch lists the assembly implementations this build has.
var vecArch = map[Impl]*vecImpl{
	ImplAVX2:   vecAVX2Blocks.withTails(),
	ImplAVX512: vecAVX512Blocks.withTails(),
}

var vecAVX2Blocks = vecBlocks{
	w: 8, dot: dotAVX2, axpy: axpyAVX2, scaleTo: scaleToAVX2, add: addAVX2, mul: mulAVX2,
	sum: sumAVX2, max: maxAVX2, expShiftSum: expShiftSumAVX2, expSum: expSumAVX2,
	silu: siluAVX2, swiglu: swigluAVX2, subShift: subShiftAVX2, scaleMul: scaleMulAVX2,
	softcap: softcapAVX2, softcapBwd: softcapBwdAVX2, geglu: gegluAVX2, gegluBwd: gegluBwdAVX2,
	bf16ToF32: bf16ToF32AVX2, f32ToBF16: f32ToBF16AVX2,
}

var vecAVX512Blocks = vecBlocks{
	w: 16, dot: dotAVX512, axpy: axpyAVX512, scaleTo: scaleToAVX512, add: addAVX512, mul: mulAVX512,
	sum: sumAVX512, max: maxAVX512, expShiftSum: expShiftSumAVX512, expSum: expSumAVX512,
	silu: siluAVX512, swiglu: swigluAVX512, swigluBwd: swigluBwdAVX512, subShift: subShiftAVX512, scaleMul: scaleMulAVX512,
	softcap: softcapAVX512, softcapBwd: softcapBwdAVX512, geglu: gegluAVX512, gegluBwd: gegluBwdAVX512,
	bf16ToF32: bf16ToF32AVX512, f32ToBF16: f32ToBF16AVX512,
}

// Declarations of the AVX2+FMA routines in vec_amd64.s and vec_exp_amd64.s;
// each handles the first len - len%8 elements.

// dotAVX2 returns sum x[i]*y[i] in 4 vector accumulators.
//
//go:noescape
func dotAVX2(x, y []float32) float32

// axpyAVX2 computes y[i] += alpha*x[i] with FMA.
//
//go:noescape
func axpyAVX2(alpha float32, x, y []float32)

// scaleToAVX2 computes dst[i] = x[i]*alpha.
//
//go:noescape
func scaleToAVX2(dst, x []float32, alpha float32)

// addAVX2 computes dst[i] = x[i]+y[i].
//
//go:noescape
func addAVX2(dst, x, y []float32)

// mulAVX2 computes dst[i] = x[i]*y[i].
//
//go:noescape
func mulAVX2(dst, x, y []float32)

// sumAVX2 returns sum x[i] in 4 vector accumulators.
//
//go:noescape
func sumAVX2(x []float32) float32

// maxAVX2 returns max x[i], NaN if any is NaN, -Inf if empty.
//
//go:noescape
func maxAVX2(x []float32) float32

// expShiftSumAVX2 computes dst[i] = exp(x[i]-shift) and returns their sum.
//
//go:noescape
func expShiftSumAVX2(dst, x []float32, shift float32) float32

// expSumAVX2 returns sum exp(x[i]-shift).
//
//go:noescape
func expSumAVX2(x []float32, shift float32) float32

// siluAVX2 computes dst[i] = x[i]/(1+exp(-x[i])).
//
//go:noescape
func siluAVX2(dst, x []float32)

// swigluAVX2 computes dst[i] = silu(gate[i])*up[i].
//
//go:noescape
func swigluAVX2(dst, gate, up []float32)

// subShiftAVX2 computes dst[i] = (x[i]-a)-b.
//
//go:noescape
func subShiftAVX2(dst, x []float32, a, b float32)

// scaleMulAVX2 computes dst[i] = (x[i]*s)*w[i].
//
//go:noescape
func scaleMulAVX2(dst, x, w []float32, s float32)

// bf16ToF32AVX2 computes dst[i] = float32frombits(uint32(src[i])<<16).
//
//go:noescape
func bf16ToF32AVX2(dst []float32, src []uint16)

// f32ToBF16AVX2 rounds src[i] to bfloat16 to nearest even, NaN to 0x7fc0.
//
//go:noescape
func f32ToBF16AVX2(dst []uint16, src []float32)

// Declarations of the AVX-512 routines in vec_avx512_amd64.s and
// vec_exp_avx512_amd64.s; each handles the first len - len%16 elements.

// dotAVX512 returns sum x[i]*y[i] in 4 vector accumulators.
//
//go:noescape
func dotAVX512(x, y []float32) float32

// axpyAVX512 computes y[i] += alpha*x[i] with FMA.
//
//go:noescape
func axpyAVX512(alpha float32, x, y []float32)

// scaleToAVX512 computes dst[i] = x[i]*alpha.
//
//go:noescape
func scaleToAVX512(dst, x []float32, alpha float32)

// addAVX512 computes dst[i] = x[i]+y[i].
//
//go:noescape
func addAVX512(dst, x, y []float32)

// mulAVX512 computes dst[i] = x[i]*y[i].
//
//go:noescape
func mulAVX512(dst, x, y []float32)

// sumAVX512 returns sum x[i] in 4 vector accumulators.
//
//go:noescape
func sumAVX512(x []float32) float32

// maxAVX512 returns max x[i], NaN if any is NaN, -Inf if empty.
//
//go:noescape
func maxAVX512(x []float32) float32

// expShiftSumAVX512 computes dst[i] = exp(x[i]-shift) and returns their sum.
//
//go:noescape
func expShiftSumAVX512(dst, x []float32, shift float32) float32

// expSumAVX512 returns sum exp(x[i]-shift).
//
//go:noescape
func expSumAVX512(x []float32, shift float32) float32

// siluAVX512 computes dst[i] = x[i]/(1+exp(-x[i])).
//
//go:noescape
func siluAVX512(dst, x []float32)

// swigluBwdAVX512 is SwiGLUBackward on whole vectors.
//
//go:noescape
func swigluBwdAVX512(dg, du, dy, gate, up []float32)

// swigluAVX512 computes dst[i] = silu(gate[i])*up[i].
//
//go:noescape
func swigluAVX512(dst, gate, up []float32)

// subShiftAVX512 computes dst[i] = (x[i]-a)-b.
//
//go:noescape
func subShiftAVX512(dst, x []float32, a, b float32)

// scaleMulAVX512 computes dst[i] = (x[i]*s)*w[i].
//
//go:noescape
func scaleMulAVX512(dst, x, w []float32, s float32)

// bf16ToF32AVX512 computes dst[i] = float32frombits(uint32(src[i])<<16).
//
//go:noescape
func bf16ToF32AVX512(dst []float32, src []uint16)

// f32ToBF16AVX512 rounds src[i] to bfloat16 to nearest even, NaN to 0x7fc0.
//
//go:noescape
func f32ToBF16AVX512(dst []uint16, src []float32)

// Declarations of the AVX2+FMA tanh-based routines in vec_tanh_amd64.s.

// softcapAVX2 computes dst[i] = c·tanh(x[i]/c).
//
//go:noescape
func softcapAVX2(dst, x []float32, c float32)

// softcapBwdAVX2 computes dx[i] = dy[i]·(1 − (y[i]/c)²), 0 where y[i] < −c.
//
//go:noescape
func softcapBwdAVX2(dx, dy, y []float32, c float32)

// gegluAVX2 computes dst[i] = gelu_tanh(gate[i])·up[i].
//
//go:noescape
func gegluAVX2(dst, gate, up []float32)

// gegluBwdAVX2 is GeGLUBackward on whole vectors.
//
//go:noescape
func gegluBwdAVX2(dg, du, dy, gate, up []float32)

// Declarations of the AVX-512 tanh-based routines in
// vec_tanh_avx512_amd64.s (their references: SoftcapRef,
// SoftcapBackwardRef, GeGLURef, GeGLUBackwardRef).

// softcapAVX512 computes dst[i] = c·tanh(x[i]/c).
//
//go:noescape
func softcapAVX512(dst, x []float32, c float32)

// softcapBwdAVX512 computes dx[i] = dy[i]·(1 − (y[i]/c)²), 0 where y[i] < −c.
//
//go:noescape
func softcapBwdAVX512(dx, dy, y []float32, c float32)

// gegluAVX512 computes dst[i] = gelu_tanh(gate[i])·up[i].
//
//go:noescape
func gegluAVX512(dst, gate, up []float32)

// gegluBwdAVX512 is GeGLUBackward on whole vectors.
//
//go:noescape
func gegluBwdAVX512(dg, du, dy, gate, up []float32)
