//go:build arm64 && !purego

package asm

// sgemmKernelNEON computes one 8×12 micro-tile (see _gen/sgemm_gen.go):
//
//	for i < 8, j < 12: s := sum_p a[p*8+i]*b[p*12+j]
//	    c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]  (alpha*s when beta == 0)
//
//go:noescape
func sgemmKernelNEON(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// neonGemm: 8×12 tiles (24 q-register accumulators); kc=256 keeps the
// 8 KiB A micro-panel in a 64 KiB L1.
var neonGemm = gemmImpl{
	impl: ImplNEON,
	mr:   8, nr: 12,
	kc: 256, mc: 1024, nc: 768,
	kernel: func(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
		_, _, _ = a[kc*8-1], b[kc*12-1], c[7*ldc+11]
		sgemmKernelNEON(kc, &a[0], &b[0], &c[0], ldc, alpha, beta)
	},
}

func gemmFor(i Impl) *gemmImpl {
	if i == ImplNEON {
		return &neonGemm
	}
	return &goGemm
}
