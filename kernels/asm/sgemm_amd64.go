//go:build amd64 && !purego

package asm

//go:generate go run ./_gen -out .

// Each assembly kernel computes one whole micro-tile; see the generator in
// _gen/sgemm_gen.go for the register plan. Equivalent Go (for MR×NR):
//
//	for i < MR, j < NR: s := sum_p a[p*MR+i]*b[p*NR+j]
//	    c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]  (alpha*s when beta == 0)

//go:noescape
func sgemmKernelAVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// The unpacked-B kernels for few rows (see gemmFewRows), mr×nr each.

//go:noescape
func sgemmKernelAVX512S1x64(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX512S2x64(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX512S3x64(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX512S4x64(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX512S6x64(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX512S8x32(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX512S12x32(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX512S16x16(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX2S1x32(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX2S2x32(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX2S4x16(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernelAVX2S6x16(kc int, a, b, c *float32, ldb, ldc int, alpha, beta float32)

//go:noescape
func packA4AVX(dst, a *float32, lda, n8, mr int)

//go:noescape
func packA4BF16AVX(dst *float32, a *uint16, lda, n8, mr int)

//go:noescape
func cvtBF16AVX(dst *float32, src *uint16, ld, rows, n8 int)

//go:noescape
func sgemmKernelAVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// sgemmStrided16KC is the k block of the 16-row strided kernel. Its B is
// typically a big activation (dBᵀ = hᵀ·g, k = tokens) swept 16 columns at a
// time down kc rows: with kc=64 the rows of one sweep span few enough pages
// and cache sets that the next 16 columns are still at hand, where kc=256
// runs at 2/3 of the speed for ldb=704 (Sapphire Rapids; no difference
// for ldb <= 256).
const sgemmStrided16KC = 64

// avx512Gemm: 12×32 tiles (24 zmm accumulators). kc=256 keeps the 12 KiB
// A micro-panel in L1 next to the B stream; a 256×1024 B block is 1 MiB,
// half of the 2 MiB L2 of a Sapphire Rapids core.
const avx512MR, avx512NR = 12, 32

var avx512Gemm = gemmImpl{
	impl: ImplAVX512,
	mr:   avx512MR, nr: avx512NR,
	kc: 256, mc: 3072, nc: 1024,
	kernel: func(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
		_, _, _ = a[kc*avx512MR-1], b[kc*avx512NR-1], c[(avx512MR-1)*ldc+avx512NR-1]
		sgemmKernelAVX512(kc, &a[0], &b[0], &c[0], ldc, alpha, beta)
	},
	packRows4:     packA4AVX,
	packRows4BF16: packA4BF16AVX,
	cvtBF16:       cvtBF16AVX,
	dot8:          dot8AVX512,
	dot8BF16:      dot8BF16AVX512,
	strided: []stridedKernel{
		{1, 64, sgemmKernelAVX512S1x64, 0},
		{2, 64, sgemmKernelAVX512S2x64, 0},
		{3, 64, sgemmKernelAVX512S3x64, 0},
		{4, 64, sgemmKernelAVX512S4x64, 0},
		{6, 64, sgemmKernelAVX512S6x64, 0},
		{8, 32, sgemmKernelAVX512S8x32, 0},
		{12, 32, sgemmKernelAVX512S12x32, 0},
		{16, 16, sgemmKernelAVX512S16x16, sgemmStrided16KC},
	},
	skinny: skinnyAVX512,
	inplace: func(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
		_, _, _ = a[(avx512MR-1)*lda+kc-1], b[kc*avx512NR-1], c[(avx512MR-1)*ldc+avx512NR-1]
		sgemmKernelAVX512R12x32(kc, &a[0], lda, &b[0], &c[0], ldc, alpha, beta)
	},
}

// avx2Gemm: 6×16 tiles (12 ymm accumulators).
var avx2Gemm = gemmImpl{
	impl: ImplAVX2,
	mr:   6, nr: 16,
	kc: 256, mc: 3072, nc: 1024,
	kernel: func(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
		_, _, _ = a[kc*6-1], b[kc*16-1], c[5*ldc+15]
		sgemmKernelAVX2(kc, &a[0], &b[0], &c[0], ldc, alpha, beta)
	},
	packRows4:     packA4AVX,
	packRows4BF16: packA4BF16AVX,
	cvtBF16:       cvtBF16AVX,
	strided: []stridedKernel{
		{1, 32, sgemmKernelAVX2S1x32, 0},
		{2, 32, sgemmKernelAVX2S2x32, 0},
		{4, 16, sgemmKernelAVX2S4x16, 0},
		{6, 16, sgemmKernelAVX2S6x16, 0},
	},
}

func gemmFor(i Impl) *gemmImpl {
	switch i {
	case ImplAVX512:
		return &avx512Gemm
	case ImplAVX2:
		return &avx2Gemm
	}
	return &goGemm
}
