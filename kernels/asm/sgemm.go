package asm

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// SGEMM in the BLIS/OpenBLAS way: op(A) and op(B) are copied block by
// block into packed micro-panels (pack.go), and a register-blocked
// micro-kernel (assembly, sgemm_*.s) computes one MR×NR tile of C per call
// from one A micro-panel and one B micro-panel (sgemm_driver.go has the
// loops and the cache blocking). Large products are split over goroutines
// by output rectangles.
//
// All matrices are row-major. Sizes or slices that do not fit are
// programming errors, not user input, and panic with a message naming the
// operand, like Go's own index checks.

// Sgemm computes C = alpha*op(A)*op(B) + beta*C. op(A) is m×k, op(B) is
// k×n, C is m×n, all row-major with leading dimensions lda, ldb, ldc.
// transA means A is stored k×m; transB means B is stored n×k. beta == 0
// means C is overwritten (NaNs in C are not propagated).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("Sgemm", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	gemm(transA, m, n, k, alpha, a, lda, f32Source{b: b, ldb: ldb, trans: transB, rows4: gemmCur.packRows4}, beta, c, ldc)
}

// SgemmSerial is Sgemm computed on the calling goroutine alone, for callers
// that already run one task per core (attention's per-head tasks): a
// nested split would only add goroutines and duplicate packing.
func SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("SgemmSerial", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	gemmOn(1, transA, m, n, k, alpha, a, lda, f32Source{b: b, ldb: ldb, trans: transB, rows4: gemmCur.packRows4}, beta, c, ldc)
}

// SgemmBF16 is Sgemm with B held as bfloat16 bit patterns; B is converted
// to float32 while its panels are packed, so no full-size float32 copy of B
// is ever made (this is how frozen bf16 weights are used).
func SgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("SgemmBF16", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	g := gemmCur
	gemm(transA, m, n, k, alpha, a, lda, bf16Source{b: b, ldb: ldb, trans: transB, rows4: g.packRows4BF16, cvt: g.cvtBF16}, beta, c, ldc)
}

// SgemmSource is Sgemm with op(B) supplied by a BSource, the hook for B
// formats that are unpacked while packing (bf16, NF4 blocks). The source is
// trusted to cover op(B)'s k×n window; A and C are checked as in Sgemm.
func SgemmSource(transA bool, m, n, k int, alpha float32, a []float32, lda int, b BSource, beta float32, c []float32, ldc int) {
	checkGemm("SgemmSource", transA, false, m, n, k, lda, len(a), max(1, n), k*n, ldc, len(c))
	gemm(transA, m, n, k, alpha, a, lda, b, beta, c, ldc)
}

// threads is the number of goroutines a large GEMM is split over.
var threads atomic.Int32

func init() { threads.Store(int32(runtime.GOMAXPROCS(0))) }

// SetThreads sets the number of worker goroutines for large GEMMs
// (default runtime.GOMAXPROCS(0) at init); n < 1 means 1.
func SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	threads.Store(int32(n))
}

// Threads reports the worker count set by SetThreads.
func Threads() int { return int(threads.Load()) }

// checkGemm panics, naming the function and operand, when a size, leading
// dimension or slice length cannot hold the matrices described.
func checkGemm(fn string, transA, transB bool, m, n, k, lda, la, ldb, lb, ldc, lc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("asm: %s: negative size m=%d n=%d k=%d", fn, m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix(fn, "A", ar, ac, lda, la)
	checkMatrix(fn, "B", br, bc, ldb, lb)
	checkMatrix(fn, "C", m, n, ldc, lc)
}

func checkMatrix(fn, name string, rows, cols, ld, length int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("asm: %s: leading dimension of %s is %d, want >= %d (%d×%d stored)", fn, name, ld, max(1, cols), rows, cols))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; length < need {
		panic(fmt.Sprintf("asm: %s: len(%s) = %d, want >= %d for %d×%d with leading dimension %d", fn, name, length, need, rows, cols, ld))
	}
}
