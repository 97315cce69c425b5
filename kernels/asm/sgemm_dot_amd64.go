//go:build amd64 && !purego

package asm

// sgemmDot8AVX512 computes, for one row a (k floats) and eight rows of a
// stored n×k B starting at b (ldb apart):
//
//	for j < 8: s := sum_p a[p]*b[j*ldb+p]
//	    c[j] = alpha*s + beta*c[j]  (alpha*s when beta == 0)
//
// sgemmDot8BF16AVX512 is the same with B as bfloat16 bit patterns.
//
//go:noescape
func sgemmDot8AVX512(k int, a *float32, b *float32, ldb int, c *float32, alpha, beta float32)

//go:noescape
func sgemmDot8BF16AVX512(k int, a *float32, b *uint16, ldb int, c *float32, alpha, beta float32)

func dot8AVX512(k int, a, b []float32, ldb int, c []float32, alpha, beta float32) {
	_, _, _ = a[k-1], b[7*ldb+k-1], c[7]
	sgemmDot8AVX512(k, &a[0], &b[0], ldb, &c[0], alpha, beta)
}

func dot8BF16AVX512(k int, a []float32, b []uint16, ldb int, c []float32, alpha, beta float32) {
	_, _, _ = a[k-1], b[7*ldb+k-1], c[7]
	sgemmDot8BF16AVX512(k, &a[0], &b[0], ldb, &c[0], alpha, beta)
}
