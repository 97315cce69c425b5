package asm

import "github.com/ftune/ftune/internal/half"

// GemmRef is the plain triple loop every GEMM of ftune is checked against
// (Sgemm and its variants in this package's tests, the CPU backend's float64
// MatMul that serves as the reference of the backend conformance suite):
// C = alpha·op(A)·op(B) + beta·C on row-major operands, each dot product
// accumulated in T in k order. beta == 0 overwrites C; alpha == 0 or k == 0
// reads neither A nor B. It panics like Sgemm when a slice cannot hold the
// matrices described.
func GemmRef[T float32 | float64](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	checkGemm("GemmRef", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var sum T
			if alpha != 0 {
				for p := 0; p < k; p++ {
					ai := i*lda + p
					if transA {
						ai = p*lda + i
					}
					bi := p*ldb + j
					if transB {
						bi = j*ldb + p
					}
					sum += a[ai] * b[bi]
				}
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * sum
			} else {
				c[i*ldc+j] = alpha*sum + beta*c[i*ldc+j]
			}
		}
	}
}

// SgemmBF16Ref is the reference for SgemmBF16: B widened to float32 (exact),
// then GemmRef.
func SgemmBF16Ref(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("SgemmBF16Ref", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	wide := make([]float32, len(b))
	for i, h := range b {
		wide[i] = half.BF16ToF32(h)
	}
	GemmRef(transA, transB, m, n, k, alpha, a, lda, wide, ldb, beta, c, ldc)
}
