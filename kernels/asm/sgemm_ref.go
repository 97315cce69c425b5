package asm

// SgemmRef is the reference for Sgemm: the plain triple loop, accumulating
// each dot product in float32 in k order. Same arguments and semantics as
// Sgemm (beta == 0 overwrites C; alpha == 0 or k == 0 reads neither A nor B).
func SgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("SgemmRef", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	gemmRef(transA, transB, m, n, k, alpha, a, lda, func(i int) float32 { return b[i] }, ldb, beta, c, ldc)
}

// SgemmBF16Ref is the reference for SgemmBF16.
func SgemmBF16Ref(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("SgemmBF16Ref", transA, transB, m, n, k, lda, len(a), ldb, len(b), ldc, len(c))
	gemmRef(transA, transB, m, n, k, alpha, a, lda, func(i int) float32 { return bf16(b[i]) }, ldb, beta, c, ldc)
}

func gemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b func(int) float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var sum float32
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
					sum += a[ai] * b(bi)
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
