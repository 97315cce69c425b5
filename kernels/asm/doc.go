// Package asm holds ftune's CPU hot loops: SGEMM, the bf16 GEMM of
// precision bf16 (GemmBF16Dot: operands rounded to bf16, VDPBF16PS on
// AVX512_BF16, BFDOT on arm64's FEAT_BF16; gemm_bf16dot.go) and the vector kernels of Llama training
// (dot, axpy, exp, silu, softmax, RMSNorm, BF16 conversion) and of Gemma's
// (tanh soft-cap, GeGLU, through the same exp).
//
// Every kernel works on plain slices and sizes; nothing here knows about
// tensors. Each has a pure-Go reference that is always compiled (the *Ref
// functions) and, where the CPU allows, assembly versions: amd64 AVX2+FMA,
// amd64 AVX-512 and arm64 NEON. The implementation is chosen once at init
// from the CPU's features (see cpu.go) and can be forced by tests through
// SetImpl; the build tag purego forces the Go fallback everywhere.
package asm
