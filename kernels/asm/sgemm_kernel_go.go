package asm

// goGemm is the pure-Go micro-kernel: a 4×4 tile whose 16 accumulators fit
// the scalar float registers of amd64 and arm64, so the inner loop does
// 16 multiply-adds per 8 loads without spilling. It is the fallback for
// other architectures and for the purego tag, and a second, readable
// statement of the kernel contract.
var goGemm = gemmImpl{
	impl: ImplGo,
	mr:   4, nr: 4,
	kc: 256, mc: 256, nc: 1024,
	kernel: kernelGo,
}

func kernelGo(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	a = a[:kc*4]
	b = b[:kc*4]
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	// Advancing the slices (rather than indexing by p) lets the compiler
	// prove every access in range and drop the bounds checks.
	for len(a) >= 4 && len(b) >= 4 {
		a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		a, b = a[4:], b[4:]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	acc := [4][4]float32{
		{c00, c01, c02, c03},
		{c10, c11, c12, c13},
		{c20, c21, c22, c23},
		{c30, c31, c32, c33},
	}
	for i := range acc {
		row := c[i*ldc : i*ldc+4]
		for j, v := range acc[i] {
			if beta == 0 {
				row[j] = alpha * v
			} else {
				row[j] = alpha*v + beta*row[j]
			}
		}
	}
}
