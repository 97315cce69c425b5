package cuda

import (
	"fmt"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// nf4Weight is a random NF4 weight [N,K] on the host: packed codes (high
// nibble first over the flattened weight), one absmax per blocksize
// elements, and its dequantized value rounded to bf16 exactly as the
// kernel's tile loader does (code·absmax in float32, then nearest even).
func nf4Weight(g *gpu, N, K, blocksize int) (packed []uint8, absmax, w []float32) {
	n := N * K
	packed = make([]uint8, max((n+1)/2, 1))
	for i := range packed {
		packed[i] = uint8(g.rng.IntN(256))
	}
	absmax = make([]float32, max((n+blocksize-1)/blocksize, 1))
	for i := range absmax {
		absmax[i] = float32(g.rng.Float64()*2 + 0.01)
	}
	w = make([]float32, n)
	for i := range w {
		q := packed[i/2] >> 4
		if i%2 == 1 {
			q = packed[i/2] & 15
		}
		w[i] = half.BF16ToF32(half.F32ToBF16(float32(nf4Code[q]) * absmax[i/blocksize]))
	}
	return packed, absmax, w
}

// Ragged sizes around the 128x128x32 tile; K a multiple of 64 (blocks align
// with rows), a multiple of 8 but not of 64 (the 4-byte group path with
// blocks spanning two rows), and odd or not a multiple of 8 (the element
// path, rows starting mid-byte). pad widens lda and ldc.
var nf4GemmCases = []gemmCase{
	{1, 1, 1, 0, 1, 0}, {5, 7, 0, 0, 1, 0}, {17, 33, 15, 0, 1, 0}, {127, 129, 31, 0, 1, 0},
	{128, 128, 64, 0, 1, 0}, {129, 257, 65, 0, 1, 0}, {64, 200, 96, 8, 0.5, 0},
	{200, 72, 300, 3, 1, 1}, {100, 130, 136, 0, 1, 0}, {256, 384, 512, 0, 1, 1}, {33, 131, 201, 5, 1, 0},
}

func TestMatmulNF4(t *testing.T) {
	g := needGPU(t)
	for _, c := range nf4GemmCases {
		for _, bs := range []int{64, 24} { // 64: QLoRA's; 24: blocks not a multiple of 8 (element path)
			name := fmt.Sprintf("matmul_nt_nf4_fwd_bf16/M%d_N%d_K%d_pad%d_beta%g_bs%d", c.M, c.N, c.K, c.pad, c.beta, bs)
			t.Run(name, func(t *testing.T) { testMatmulNF4(t, g, true, c, bs, name) })
		}
	}
}

// The backward's dx = dy·W: W stored [K,N], so N is the row length the
// blocks and the 8-code groups run along. Sizes 0 and 1, tile±1 on every
// axis, N a multiple of 64 (blocks align with rows), of 8 but not 64 (4-byte
// groups, blocks spanning rows), of 4 but not 8 and odd (element path, rows
// starting mid-byte), M of 1 (one token), tall skinny M (the 8192-token
// LoRA step scaled down: K = out features, N = in features), padded lda and
// ldc, alpha != 1 and beta = 1 (the += rule).
var nf4NNGemmCases = []gemmCase{
	{0, 5, 7, 0, 1, 0}, {5, 0, 7, 0, 1, 0}, {5, 7, 0, 0, 1, 0}, {5, 7, 0, 0, 1, 1},
	{1, 1, 1, 0, 1, 0}, {1, 200, 72, 0, 1, 0}, {1, 64, 64, 0, 1, 1},
	{127, 127, 31, 0, 1, 0}, {128, 128, 32, 0, 1, 0}, {129, 129, 33, 0, 1, 0},
	{17, 72, 15, 0, 1, 0}, {40, 100, 64, 0, 1, 0}, {33, 131, 201, 5, 1, 0}, {64, 201, 96, 8, 0.5, 0},
	{100, 136, 130, 3, 1, 1}, {1031, 72, 40, 0, 1, 0}, {513, 40, 72, 2, 1, 1},
}

func TestMatmulNF4NN(t *testing.T) {
	g := needGPU(t)
	for _, c := range nf4NNGemmCases {
		for _, bs := range []int{64, 24} { // 64: QLoRA's; 24: blocks not a multiple of 8 (element path)
			name := fmt.Sprintf("matmul_nn_nf4_fwd_bf16/M%d_N%d_K%d_pad%d_alpha%g_beta%g_bs%d", c.M, c.N, c.K, c.pad, c.alpha, c.beta, bs)
			t.Run(name, func(t *testing.T) { testMatmulNF4(t, g, false, c, bs, name) })
		}
	}
}

// testMatmulNF4 runs one NF4 GEMM, C = alpha·A·op(W) + beta·C with W [N,K]
// (transB, MatmulNF4BF16) or [K,N] (MatmulNF4NNBF16), against the float64
// product of the same bf16 A and the weight dequantized and rounded to bf16
// as the tile loader does.
func testMatmulNF4(t *testing.T, g *gpu, transB bool, c gemmCase, bs int, name string) {
	lda, ldc := max(c.K+c.pad, 1), max(c.N+c.pad, 1)
	a := g.randn(max(c.M*lda, 1), 1, BF16)
	c0 := g.randn(max(c.M*ldc, 1), 1, F32)
	rows, cols := c.K, c.N // W's shape as stored
	if transB {
		rows, cols = c.N, c.K
	}
	packed, absmax, w := nf4Weight(g, rows, cols, bs)
	pa := g.up(a, BF16)
	pp := g.alloc(len(packed))
	g.ok(CopyHtoD(g.d, pp, packed))
	pm := g.up(absmax, F32)
	pc := g.alloc(len(c0) * 4) // NaN-poisoned
	if c.beta != 0 {
		g.ok(CopyHtoD(g.d, pc, c0))
	}
	launch := g.d.MatmulNF4NNBF16
	if transB {
		launch = g.d.MatmulNF4BF16
	}
	g.ok(launch(g.s, c.M, c.N, c.K, pa, lda, pp, pm, bs, pc, ldc, c.alpha, c.beta))
	if c.M == 0 || c.N == 0 {
		return
	}
	want, mag := matmulRef(false, transB, c.M, c.N, c.K, a, lda, w, max(cols, 1), c0, ldc, float64(c.alpha), float64(c.beta))
	got := g.down(pc, c.M*ldc, F32)
	gw, ww, mw := gemmWindow(t, got, want, mag, c.M, c.N, ldc, c.beta)
	// The reference uses the weight dequantized and rounded to bf16 as the
	// tile loader does (bit for bit), so the inputs are exact and the error is
	// the tensor cores' float32 accumulation: the bf16 GEMM's 1e-4 of Σ|a·b|.
	// With K = 0 the product is empty: C = beta·C0 exactly (0 with beta 0).
	compare(t, name, gw, ww, mw, tol{0, 1e-4})
}

func TestMatmulNF4BadArgs(t *testing.T) {
	g := needGPU(t)
	if err := g.d.MatmulNF4BF16(g.s, 4, 4, 8, 0, 7, 0, 0, 64, 0, 4, 1, 0); err == nil {
		t.Error("lda < K accepted")
	}
	if err := g.d.MatmulNF4BF16(g.s, 4, 4, 8, 0, 8, 0, 0, 0, 0, 4, 1, 0); err == nil {
		t.Error("blocksize 0 accepted")
	}
	if err := g.d.MatmulNF4NNBF16(g.s, 4, 4, 8, 0, 7, 0, 0, 64, 0, 4, 1, 0); err == nil {
		t.Error("nn: lda < K accepted")
	}
	if err := g.d.MatmulNF4NNBF16(g.s, 4, 6, 8, 0, 8, 0, 0, 64, 0, 5, 1, 0); err == nil {
		t.Error("nn: ldc < N accepted")
	}
	if err := g.d.MatmulNF4NNBF16(g.s, 4, 4, 8, 0, 8, 0, 0, -1, 0, 4, 1, 0); err == nil {
		t.Error("nn: blocksize -1 accepted")
	}
}
