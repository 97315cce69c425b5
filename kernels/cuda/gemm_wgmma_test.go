package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The sm_90a GEMMs (gemm_sm90.cu, wgmma; nt, and nn with MN-major B
// tiles) against the float64 product, with
// the _cbf16 GEMMs' checks (testGemmCBF16: its bf16 C within 1 bf16 ulp +
// 1e-4·Σ|terms| of the reference, bit for bit the bf16 rounding of its
// float32 C, whose accumulation error is logged). Cases: ragged M and N
// around the 128x128 tile, K a multiple of 8 but not of the 64-wide k-tile
// (zero-filled chunks), K of one and of five k-tiles (more than the ring's
// 4 stages), K 0, padded leading dimensions (multiples of 8 for A and B,
// any for C), alpha ≠ 1, beta 0 on a NaN-poisoned C and beta 1.
//
// On a GPU of another compute capability than 9.0 the kernel does not
// load: the test then checks that the launcher refuses with the reason.
// Under ptxsim it runs on the simulator's wgmma (kernels/cuda/ptxsim's
// wgmma.go), which models the ISA's descriptor, swizzle and accumulator
// layout as read from the PTX documentation; a GPU run is what proves them.
var wgmmaCases = []gemmCase{
	{1, 1, 8, 0, 1, 0}, {5, 7, 0, 0, 0.5, 1}, {17, 33, 24, 0, 1, 0}, {127, 129, 64, 0, -1.5, 1},
	{129, 257, 72, 8, 1, 0}, {64, 200, 96, 8, 0.5, 0}, {200, 136, 320, 0, -0.75, 1}, {130, 128, 136, 16, 2, 1},
}

func TestMatmulWGMMA(t *testing.T) {
	g := needGPU(t)
	if !g.d.Hopper() {
		err := g.d.MatmulWGMMABF16To(g.s, F32, true, 4, 4, 8, 0, 8, 0, 8, 0, 4, 1, 0)
		errTMA := g.d.MatmulWGMMATMABF16To(g.s, F32, true, 4, 4, 8, 0, 8, 0, 8, 0, 4, 1, 0)
		if !errors.Is(err, ErrBadArgument) || !errors.Is(errTMA, ErrBadArgument) {
			t.Fatalf("wgmma GEMM on a %d.%d GPU: err %v and (TMA) %v, want ErrBadArgument", g.d.Major, g.d.Minor, err, errTMA)
		}
		t.Logf("compute capability %d.%d: refused as it should be: %v", g.d.Major, g.d.Minor, err)
		return
	}
	var worst cbf16Worst
	for _, loads := range []string{"", "_tma", "_tma_ws"} {
		for _, transB := range []bool{true, false} {
			cases := wgmmaCases
			if loads != "" {
				cases = append(cases[:len(cases):len(cases)], wgmmaTMACases...)
			}
			for _, c := range cases {
				if !transB && loads == "" {
					c.N = (c.N + 7) / 8 * 8 // the cp.async nn product's contract; still ragged against the 128-wide tile
				}
				name := fmt.Sprintf("matmul_%s_wgmma%s/M%d_N%d_K%d_pad%d_alpha%g_beta%g", transName(false, transB), loads, c.M, c.N, c.K, c.pad, c.alpha, c.beta)
				t.Run(name, func(t *testing.T) { testMatmulWGMMA(t, g, loads, transB, c, name, &worst) })
			}
		}
	}
	worst.log(t)
}

// wgmmaTMACases are products only the TMA loads take: K and N not
// multiples of 8 (the TMA unit zero-fills past the matrix element by
// element; the row pitch stays a multiple of 8).
var wgmmaTMACases = []gemmCase{{33, 45, 21, 0, 1, 0}, {130, 131, 77, 3, -0.5, 1}}

// testMatmulWGMMA runs one case on the kernels of loads: "" (cp.async),
// "_tma" or "_tma_ws" (TMA, warp-specialised).
func testMatmulWGMMA(t *testing.T, g *gpu, loads string, transB bool, c gemmCase, name string, worst *cbf16Worst) {
	rowsA, rowsB, lda, ldb, ldc := gemmLayout(false, transB, c)
	lda, ldb = (lda+7)/8*8, (ldb+7)/8*8 // the kernels' contract
	a := g.randn(max(rowsA*lda, 1), 1, BF16)
	b := g.randn(max(rowsB*ldb, 1), 1, BF16)
	pa, pb := g.up(a, BF16), g.up(b, BF16)
	testGemmCBF16(t, g, c, ldc, name, worst,
		func(out DType, pc Ptr) error {
			switch loads {
			case "_tma":
				return g.d.MatmulWGMMATMABF16To(g.s, out, transB, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta)
			case "_tma_ws":
				return g.d.MatmulWGMMAWarpSpecializedBF16To(g.s, out, transB, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta)
			}
			return g.d.MatmulWGMMABF16To(g.s, out, transB, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta)
		},
		func(c0 []float32) ([]float64, []float64) {
			return matmulRef(false, transB, c.M, c.N, c.K, a, lda, b, ldb, c0, ldc, float64(c.alpha), float64(c.beta))
		})
}

// TestMatmulWGMMATakes: the products the kernel does not take are refused
// before any launch, each with its reason.
func TestMatmulWGMMATakes(t *testing.T) {
	g := needGPU(t)
	if !g.d.Hopper() {
		t.Logf("compute capability %d.%d: every product is refused (TestMatmulWGMMA checks it)", g.d.Major, g.d.Minor)
	}
	for _, c := range []struct {
		transA, transB bool
		N, K, lda, ldb int
		a, b           Ptr
		want           string
	}{
		{true, false, 64, 64, 64, 64, 0, 0, "nt and nn products only"},
		{true, true, 64, 64, 64, 64, 0, 0, "nt and nn products only"},
		{false, true, 64, 60, 64, 64, 0, 0, "multiples of 8"},
		{false, true, 64, 64, 68, 64, 0, 0, "multiples of 8"},
		{false, false, 64, 64, 64, 68, 0, 0, "multiples of 8"},
		{false, false, 60, 64, 64, 64, 0, 0, "N a multiple of 8"},
		{false, true, 64, 64, 64, 64, 8, 0, "16-byte aligned"},
	} {
		err := g.d.WGMMATakes(c.transA, c.transB, c.N, c.K, c.lda, c.ldb, c.a, c.b)
		if !errors.Is(err, ErrBadArgument) || g.d.Hopper() && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want ErrBadArgument with %q", c, err, c.want)
		}
	}
	for _, c := range []struct {
		transA   bool
		lda, ldb int
		a, b     Ptr
		want     string
	}{
		{true, 64, 64, 0, 0, "nt and nn products only"},
		{false, 60, 64, 0, 0, "multiples of 8"},
		{false, 64, 12, 0, 0, "multiples of 8"},
		{false, 64, 64, 0, 8, "16-byte aligned"},
	} {
		err := g.d.WGMMATMATakes(c.transA, c.lda, c.ldb, c.a, c.b)
		if !errors.Is(err, ErrBadArgument) || g.d.Hopper() && !strings.Contains(err.Error(), c.want) {
			t.Errorf("TMA %+v: err %v, want ErrBadArgument with %q", c, err, c.want)
		}
	}
	if g.d.Hopper() {
		if err := g.d.WGMMATMATakes(false, 64, 72, 0, 16); err != nil {
			t.Errorf("TMA: an aligned product: %v", err)
		}
		if err := g.d.WGMMATakes(false, true, 60, 64, 64, 72, 0, 16); err != nil {
			t.Errorf("an aligned nt product (any N): %v", err)
		}
		if err := g.d.WGMMATakes(false, false, 64, 64, 64, 72, 0, 16); err != nil {
			t.Errorf("an aligned nn product: %v", err)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

// TestMatmulWGMMANF4: the sm_90a NF4 GEMMs (QLoRA's forward and dx on
// wgmma, the weight dequantized by the block's threads into the swizzled
// tiles) under TestMatmulNF4CBF16's checks: both orientations, plain and
// double-quantized scales, block sizes 64 and 24 (the loader's 4-byte and
// element paths), N odd and ragged (the NF4 loader takes any), K a
// multiple of 8 (A's cp.async chunks) but not of the 64-wide k-tile, K 0,
// beta 0 on NaN-poisoned C and 1. On another GPU: refused.
func TestMatmulWGMMANF4(t *testing.T) {
	g := needGPU(t)
	if !g.d.Hopper() {
		if err := g.d.MatmulWGMMANF4BF16To(g.s, F32, true, 4, 4, 8, 0, 8, 0, 0, 64, nil, 0, 4, 1, 0); !errors.Is(err, ErrBadArgument) {
			t.Fatalf("wgmma NF4 GEMM on a %d.%d GPU: err %v, want ErrBadArgument", g.d.Major, g.d.Minor, err)
		}
		return
	}
	var worst cbf16Worst
	for _, dq := range []bool{false, true} {
		for _, transB := range []bool{true, false} {
			for _, c := range []gemmCase{{1, 1, 8, 0, 1, 0}, {5, 7, 0, 0, 0.5, 1}, {17, 73, 24, 0, 1, 0}, {127, 129, 72, 0, -1.5, 1},
				{64, 200, 96, 8, 0.5, 0}, {130, 131, 200, 5, 2, 1}} {
				for _, bs := range []int{64, 24} {
					kind := map[bool]string{false: "nf4", true: "nf4dq"}[dq]
					name := fmt.Sprintf("matmul_%s_wgmma_%s/M%d_N%d_K%d_pad%d_alpha%g_beta%g_bs%d",
						transName(false, transB), kind, c.M, c.N, c.K, c.pad, c.alpha, c.beta, bs)
					t.Run(name, func(t *testing.T) { testMatmulNF4CBF16(t, g, true, dq, transB, c, bs, name, &worst) })
				}
			}
		}
	}
	worst.log(t)
	if err := g.d.MatmulWGMMANF4BF16To(g.s, F32, true, 4, 4, 12, 0, 16, 0, 0, 64, nil, 0, 4, 1, 0); !errors.Is(err, ErrBadArgument) {
		t.Errorf("K 12: err %v, want ErrBadArgument", err)
	}
}
