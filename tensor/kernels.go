package tensor

// Bridges to kernels/asm; replaced by the assembly SGEMM once it lands.
var sgemm = gemmRef[float32]

func sgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	rows, cols := k, n
	if transB {
		rows, cols = n, k
	}
	tmp := make([]float32, rows*ldb)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			tmp[i*ldb+j] = BF16ToF32(b[i*ldb+j])
		}
	}
	sgemm(transA, transB, m, n, k, alpha, a, lda, tmp, ldb, beta, c, ldc)
}
