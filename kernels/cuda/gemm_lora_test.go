package cuda

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/half"
	"github.com/ftune/ftune/kernels/dropout"
)

// The fused LoRA products (MatmulLoRABF16, MatmulLoRANF4BF16) against the
// float64 sum of their two products on the same bf16 operands, rounded to
// bf16: |got - bf16(ref)| <= 1 bf16 ulp + 1e-4·Σ|terms|, the bound of the
// _cbf16 GEMMs (gemm_cbf16_test.go says why), Σ|terms| counting both
// products' terms (the low-rank ones times |scale|) and beta·C. The scale
// is one more float32 rounding of the low-rank partial sum (2^-24 of it),
// far inside the bound. Beyond the bound, the test fails if the low-rank
// product were dropped, scaled twice or unscaled: every case's low-rank
// term is a sizeable part of C (loraShare, logged and checked).

// loraCase is a base product gemmCase with the rank r of the low-rank pair
// and its scale.
type loraCase struct {
	gemmCase
	r     int
	scale float32
}

// Ranks 1, 8 (one k-tile, ragged), 16, 33 (two k-tiles, ragged, odd: the
// element loader), 64 (two full k-tiles); base K 0 (the low-rank product
// alone), ragged and multi-tile; padded leading dimensions; beta 0 on a
// NaN-poisoned C and beta 1; alpha != 1.
var loraCases = []loraCase{
	{gemmCase{1, 1, 1, 0, 1, 0}, 1, 2},
	{gemmCase{17, 33, 15, 0, 1, 0}, 8, 2},
	{gemmCase{5, 7, 0, 0, 1, 0}, 16, 0.5},
	{gemmCase{127, 129, 64, 0, 1, 1}, 16, 2},
	{gemmCase{129, 257, 65, 3, 1, 0}, 33, 1.7},
	{gemmCase{64, 200, 96, 8, 0.5, 1}, 64, 0.25},
	{gemmCase{200, 72, 300, 0, -1, 0}, 16, 4},
}

// The nn product (the backward's dx) also runs with LoRA dropout's mask on
// the low-rank product (p = 0.3, a mask row length of N + 3 so that rows
// start at every offset within a draw), against kernels/dropout's Mask.
func TestMatmulLoRA(t *testing.T) {
	g := needGPU(t)
	var worst cbf16Worst
	for _, base := range []string{"bf16", "nf4", "nf4dq"} {
		for _, mode := range []struct {
			transB, drop bool
		}{{true, false}, {false, false}, {false, true}} {
			for _, c := range loraCases {
				name := fmt.Sprintf("%s_%s/M%d_N%d_K%d_r%d_pad%d_alpha%g_beta%g_scale%g", base, transName(false, mode.transB),
					c.M, c.N, c.K, c.r, c.pad, c.alpha, c.beta, c.scale)
				if mode.drop {
					name += "_dropout0.3"
				}
				t.Run(name, func(t *testing.T) { testMatmulLoRA(t, g, base, mode.transB, mode.drop, c, name, &worst) })
			}
		}
	}
	worst.log(t)
}

// wgmmaLoRACases keep the wgmma kernel's contract (K, the rank and every
// leading dimension multiples of 8, which testMatmulLoRA rounds them up
// to): K 0, one k-tile and several, ragged K (a multiple of 8 but not of
// the 64-wide k-tile), ranks of one k-tile and of two (80, ragged); ragged
// M and N around the 128×128 tile, beta 0 and 1, alpha ≠ 1.
var wgmmaLoRACases = []loraCase{
	{gemmCase{1, 1, 8, 0, 1, 0}, 8, 2},
	{gemmCase{17, 33, 16, 0, 1, 0}, 8, 2},
	{gemmCase{5, 7, 0, 0, 1, 0}, 16, 0.5},
	{gemmCase{127, 129, 64, 0, 1, 1}, 16, 2},
	{gemmCase{129, 257, 72, 8, 1, 0}, 32, 1.7},
	{gemmCase{64, 200, 96, 8, 0.5, 1}, 64, 0.25},
	{gemmCase{200, 136, 320, 0, -1, 0}, 80, 4},
}

// TestMatmulLoRAWGMMA: the fused products on the sm_90a kernels
// (MatmulLoRAWGMMABF16 and its TMA variants MatmulLoRAWGMMATMABF16, one
// block of 256 threads or warp-specialised: the
// forward, nt; the backward's dx, nn, with and without LoRA dropout's
// mask) under TestMatmulLoRA's checks; on a GPU of
// another compute capability the launcher must refuse them with the reason.
func TestMatmulLoRAWGMMA(t *testing.T) {
	g := needGPU(t)
	if !g.d.Hopper() {
		err := g.d.MatmulLoRAWGMMABF16(g.s, true, 4, 4, 8, 0, 8, 0, 8, LowRank{LDA: 8, LDB: 8, K: 8}, 0, 4, 1, 0)
		if !errors.Is(err, ErrBadArgument) {
			t.Fatalf("wgmma LoRA GEMM on a %d.%d GPU: err %v, want ErrBadArgument", g.d.Major, g.d.Minor, err)
		}
		t.Logf("compute capability %d.%d: refused as it should be: %v", g.d.Major, g.d.Minor, err)
		return
	}
	var worst cbf16Worst
	for _, base := range []string{"wgmma", "wgmma_tma", "wgmma_tma_ws", "wgmma_nf4", "wgmma_nf4dq"} {
		for _, mode := range []struct{ transB, drop bool }{{true, false}, {false, false}, {false, true}} {
			cases := wgmmaLoRACases
			if strings.HasPrefix(base, "wgmma_tma") {
				// Ranks and K not multiples of 8, odd N: the TMA loads take them.
				cases = append(cases[:len(cases):len(cases)], loraCase{gemmCase{45, 33, 21, 0, 1, 1}, 12, 2}, loraCase{gemmCase{130, 131, 77, 3, 1, 0}, 33, 0.5})
			}
			for _, c := range cases {
				if !mode.transB && !strings.HasPrefix(base, "wgmma_tma") {
					c.N = (c.N + 7) / 8 * 8 // the cp.async nn product's contract (the low-rank pair's, for NF4)
				}
				name := fmt.Sprintf("%s_%s/M%d_N%d_K%d_r%d_pad%d_alpha%g_beta%g_scale%g", base, transName(false, mode.transB), c.M, c.N, c.K, c.r, c.pad, c.alpha, c.beta, c.scale)
				if mode.drop {
					name += "_dropout0.3"
				}
				t.Run(name, func(t *testing.T) { testMatmulLoRA(t, g, base, mode.transB, mode.drop, c, name, &worst) })
			}
		}
	}
	worst.log(t)
	for what, lr := range map[string]LowRank{
		"rank 12": {LDA: 16, LDB: 16, K: 12},
		"lda2 20": {LDA: 20, LDB: 16, K: 16},
		"B2 at 8": {LDA: 16, LDB: 16, K: 16, B: 8},
	} {
		if err := g.d.MatmulLoRAWGMMABF16(g.s, true, 4, 4, 8, 0, 8, 0, 8, lr, 0, 4, 1, 0); !errors.Is(err, ErrBadArgument) || !strings.Contains(err.Error(), "low-rank pair") {
			t.Errorf("%s: err %v, want ErrBadArgument naming the low-rank pair", what, err)
		}
	}
}

func testMatmulLoRA(t *testing.T, g *gpu, base string, transB, drop bool, c loraCase, name string, worst *cbf16Worst) {
	// up8 rounds a leading dimension up to the wgmma kernel's multiple of 8.
	up8 := func(n int) int {
		if strings.HasPrefix(base, "wgmma") {
			return (n + 7) / 8 * 8
		}
		return n
	}
	lda, ldc := up8(max(c.K+c.pad, 1)), max(c.N+c.pad, 1)
	a := g.randn(max(c.M*lda, 1), 1, BF16)
	pa := g.up(a, BF16)
	// The low-rank pair: h [M,r] and B [N,r] (nt) or [r,N] (nn), padded.
	lda2 := up8(c.r + c.pad)
	rows2, ldb2 := c.r, up8(c.N+c.pad)
	if transB {
		rows2, ldb2 = c.N, up8(c.r+c.pad)
	}
	h := g.randn(max(c.M*lda2, 1), 1, BF16)
	b2 := g.randn(max(rows2*ldb2, 1), 1, BF16)
	lr := LowRank{A: g.up(h, BF16), LDA: lda2, B: g.up(b2, BF16), LDB: ldb2, K: c.r, Scale: c.scale}
	var mask []float32 // [M, N+3], the mask's rows as the kernel indexes them
	if drop {
		dropAt, keep := dropout.Threshold(0.3)
		key, pos := g.rng.Uint64(), g.rng.Uint64()>>8
		lr.Dropout = &LowRankDropout{Key: key, Pos: pos, Drop: dropAt, Keep: keep, LDM: c.N + 3}
		mask = make([]float32, max(c.M*(c.N+3), 1))
		dropout.Mask(mask, key, pos, dropAt, keep)
	}

	rows, cols := c.K, c.N // W as stored
	if transB {
		rows, cols = c.N, c.K
	}
	var w []float32 // W as the kernel multiplies it (bf16 values)
	ldb := max(cols, 1)
	var launch func(pc Ptr) error
	switch base {
	case "bf16", "wgmma", "wgmma_tma", "wgmma_tma_ws":
		ldb = up8(max(cols+c.pad, 1))
		w = g.randn(max(rows*ldb, 1), 1, BF16)
		pw := g.up(w, BF16)
		launch = func(pc Ptr) error {
			switch base {
			case "wgmma":
				return g.d.MatmulLoRAWGMMABF16(g.s, transB, c.M, c.N, c.K, pa, lda, pw, ldb, lr, pc, ldc, c.alpha, c.beta)
			case "wgmma_tma", "wgmma_tma_ws":
				return g.d.MatmulLoRAWGMMATMABF16(g.s, base == "wgmma_tma_ws", transB, c.M, c.N, c.K, pa, lda, pw, ldb, lr, pc, ldc, c.alpha, c.beta)
			}
			return g.d.MatmulLoRABF16(g.s, transB, c.M, c.N, c.K, pa, lda, pw, ldb, lr, pc, ldc, c.alpha, c.beta)
		}
	case "nf4", "wgmma_nf4":
		packed, absmax, wv := nf4Weight(g, rows, cols, 64)
		w = wv
		pp := g.alloc(len(packed))
		g.ok(CopyHtoD(g.d, pp, packed))
		pm := g.up(absmax, F32)
		launch = func(pc Ptr) error {
			if base == "wgmma_nf4" {
				return g.d.MatmulLoRAWGMMANF4BF16(g.s, transB, c.M, c.N, c.K, pa, lda, pp, pm, 64, nil, lr, pc, ldc, c.alpha, c.beta)
			}
			return g.d.MatmulLoRANF4BF16(g.s, transB, c.M, c.N, c.K, pa, lda, pp, pm, 64, nil, lr, pc, ldc, c.alpha, c.beta)
		}
	case "nf4dq", "wgmma_nf4dq":
		q := newNF4DQ(g, rows*cols, 24, 3)
		w = make([]float32, rows*cols)
		for i := range w {
			w[i] = half.BF16ToF32(half.F32ToBF16(q.value(i, 24)))
		}
		pp, nq := q.upload(g)
		launch = func(pc Ptr) error {
			if base == "wgmma_nf4dq" {
				return g.d.MatmulLoRAWGMMANF4BF16(g.s, transB, c.M, c.N, c.K, pa, lda, pp, 0, 24, &nq, lr, pc, ldc, c.alpha, c.beta)
			}
			return g.d.MatmulLoRANF4BF16(g.s, transB, c.M, c.N, c.K, pa, lda, pp, 0, 24, &nq, lr, pc, ldc, c.alpha, c.beta)
		}
	}

	c0 := g.randn(max(c.M*ldc, 1), 1, BF16)
	pc := g.alloc(len(c0) * 2) // NaN-poisoned
	if c.beta != 0 {
		g.ok(CopyHtoD(g.d, pc, toBF16s(c0)))
	}
	g.ok(launch(pc))
	if c.M == 0 || c.N == 0 {
		return
	}
	// Reference: alpha·(A·op(W) + scale·h·op(B2)) + beta·C0, with the
	// magnitudes of both products' terms.
	want, mag := matmulRef(false, transB, c.M, c.N, c.K, a, lda, w, ldb, c0, ldc, float64(c.alpha), float64(c.beta))
	low, lowMag := matmulRef(false, transB, c.M, c.N, c.r, h, lda2, b2, ldb2, nil, ldc, float64(c.alpha)*float64(c.scale), 0)
	if drop {
		for i := 0; i < c.M; i++ {
			for j := 0; j < c.N; j++ {
				m := float64(mask[i*(c.N+3)+j])
				low[i*ldc+j] *= m
				lowMag[i*ldc+j] *= m
			}
		}
	}
	var share, total float64
	for i := range want {
		want[i] += low[i]
		mag[i] += lowMag[i]
		share += low[i] * low[i]
		total += want[i] * want[i]
	}
	got, wantW, magW := gemmWindow(t, g.down(pc, c.M*ldc, BF16), want, mag, c.M, c.N, ldc, c.beta)
	maxUlps, maxRatio, maxAbs, bad := checkBF16Output(t, name, got, wantW, magW)
	// The low-rank term must matter: a kernel that dropped it would pass
	// a case where it is lost in rounding (checked where C has enough
	// elements for its share not to be one random draw).
	if s := math.Sqrt(share / total); len(got) >= 100 && s < 0.05 {
		t.Errorf("%s: the low-rank product is %.3g of C's norm: too small for this case to test it", name, s)
	}
	worst.add(maxUlps, maxRatio, 0, len(got))
	record("matmul_lora/"+name, len(got), maxAbs, maxUlps, maxRatio, tol{0, 1e-4}, bad == 0)
}

// TestMatmulLoRABadArgs: the low-rank pair's leading dimensions and rank
// are checked before any launch.
func TestMatmulLoRABadArgs(t *testing.T) {
	g := needGPU(t)
	errs := map[string]error{
		"rank < 0":          g.d.MatmulLoRABF16(g.s, true, 4, 4, 8, 0, 8, 0, 8, LowRank{LDA: 1, LDB: 1, K: -1}, 0, 4, 1, 0),
		"lda2 < r":          g.d.MatmulLoRABF16(g.s, true, 4, 4, 8, 0, 8, 0, 8, LowRank{LDA: 3, LDB: 4, K: 4}, 0, 4, 1, 0),
		"nt ldb2 < r":       g.d.MatmulLoRABF16(g.s, true, 4, 4, 8, 0, 8, 0, 8, LowRank{LDA: 4, LDB: 3, K: 4}, 0, 4, 1, 0),
		"nn ldb2 < N":       g.d.MatmulLoRABF16(g.s, false, 4, 6, 8, 0, 8, 0, 6, LowRank{LDA: 4, LDB: 5, K: 4}, 0, 6, 1, 0),
		"nf4 blocksize 0":   g.d.MatmulLoRANF4BF16(g.s, true, 4, 4, 8, 0, 8, 0, 0, 0, nil, LowRank{LDA: 4, LDB: 4, K: 4}, 0, 4, 1, 0),
		"nf4 base lda < K":  g.d.MatmulLoRANF4BF16(g.s, true, 4, 4, 8, 0, 7, 0, 0, 64, nil, LowRank{LDA: 4, LDB: 4, K: 4}, 0, 4, 1, 0),
		"nf4dq nested bs 0": g.d.MatmulLoRANF4BF16(g.s, false, 4, 4, 8, 0, 8, 0, 0, 64, &NF4Nested{}, LowRank{LDA: 4, LDB: 4, K: 4}, 0, 4, 1, 0),
		"nt dropout":        g.d.MatmulLoRABF16(g.s, true, 4, 4, 8, 0, 8, 0, 8, LowRank{LDA: 4, LDB: 4, K: 4, Dropout: &LowRankDropout{LDM: 4}}, 0, 4, 1, 0),
		"mask row < N":      g.d.MatmulLoRABF16(g.s, false, 4, 6, 8, 0, 8, 0, 6, LowRank{LDA: 4, LDB: 6, K: 4, Dropout: &LowRankDropout{LDM: 5}}, 0, 6, 1, 0),
	}
	for what, err := range errs {
		if !errors.Is(err, ErrBadArgument) {
			t.Errorf("%s: err %v, want ErrBadArgument", what, err)
		}
	}
}

// TestMatmulDropoutA: h = (mask ⊙ A)·Bᵀ with the mask drawn in the kernel
// against the float64 product of A dropped out on the host
// (dropout.Apply, then bf16 as the kernel rounds each element), within 1
// bf16 ulp + 1e-4·Σ|terms|; the mask's row length K + 2 differs from
// lda = K + pad, so a kernel indexing the mask by lda fails.
func TestMatmulDropoutA(t *testing.T) {
	g := needGPU(t)
	var worst cbf16Worst
	for _, c := range []gemmCase{{1, 1, 1, 0, 1, 0}, {17, 16, 15, 0, 1, 0}, {129, 16, 200, 3, 1, 0}, {200, 33, 72, 8, 0.5, 1}, {64, 130, 96, 0, 1, 1}} {
		name := fmt.Sprintf("M%d_N%d_K%d_pad%d_alpha%g_beta%g", c.M, c.N, c.K, c.pad, c.alpha, c.beta)
		t.Run(name, func(t *testing.T) {
			lda, ldb, ldc := c.K+c.pad, max(c.K, 1), c.N+c.pad
			a := g.randn(max(c.M*lda, 1), 1, BF16)
			b := g.randn(max(c.N*ldb, 1), 1, BF16)
			pa, pb := g.up(a, BF16), g.up(b, BF16)
			m, ad := droppedOut(g, a, c.M, c.K, lda, c.K+2)
			c0, pc := bf16C(g, c, ldc)
			g.ok(g.d.MatmulDropoutABF16(g.s, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta, m))
			want, mag := matmulRef(false, true, c.M, c.N, c.K, ad, lda, b, ldb, c0, ldc, float64(c.alpha), float64(c.beta))
			got, wantW, magW := gemmWindow(t, g.down(pc, c.M*ldc, BF16), want, mag, c.M, c.N, ldc, c.beta)
			maxUlps, maxRatio, _, _ := checkBF16Output(t, name, got, wantW, magW)
			worst.add(maxUlps, maxRatio, 0, len(got))
		})
	}
	worst.log(t)
	if err := g.d.MatmulDropoutABF16(g.s, 4, 4, 8, 0, 8, 0, 8, 0, 4, 1, 0, LowRankDropout{LDM: 7}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("mask row length < K: err %v, want ErrBadArgument", err)
	}
}

// TestMatmulTNDropoutB: dA = Aᵀ·(mask ⊙ B) with the mask drawn in the
// kernel against the float64 product of B dropped out on the host
// (dropout.Mask, then bf16 as the kernel rounds each element), within 1
// bf16 ulp + 1e-4·Σ|terms|. The mask's row length N + 2 differs from
// ldb = N + pad, so a kernel indexing the mask by ldb fails; the last three
// cases split K (LoRA's shape: M the rank, K the tokens), each slice
// resuming the mask stream at its first row, which the launch count
// proves ran.
func TestMatmulTNDropoutB(t *testing.T) {
	g := needGPU(t)
	var worst cbf16Worst
	cases := []gemmCase{{1, 1, 1, 0, 1, 0}, {16, 17, 15, 0, 1, 0}, {16, 130, 200, 3, 1, 0}, {33, 200, 72, 8, 0.5, 1},
		{16, 200, 2100, 3, -0.75, 1}, {16, 130, 2309, 1, 2, 0}, {8, 64, 4096, 0, 1, 0}}
	for _, c := range cases {
		tiles := ((c.N + gemmBN - 1) / gemmBN) * ((c.M + gemmBM - 1) / gemmBM)
		slices, _ := splitK(tiles, c.M, c.N, c.K, g.d.SMs)
		name := fmt.Sprintf("M%d_N%d_K%d_pad%d_alpha%g_beta%g_slices%d", c.M, c.N, c.K, c.pad, c.alpha, c.beta, slices)
		t.Run(name, func(t *testing.T) {
			if c.K >= 2048 && slices < 2 {
				t.Fatalf("not split on %d SMs: the case tests nothing of the slices", g.d.SMs)
			}
			lda, ldb, ldc := c.M+c.pad, c.N+c.pad, c.N+c.pad
			a := g.randn(max(c.K*lda, 1), 1, BF16)
			b := g.randn(max(c.K*ldb, 1), 1, BF16)
			pa, pb := g.up(a, BF16), g.up(b, BF16)
			m, bd := droppedOut(g, b, c.K, c.N, ldb, c.N+2)
			c0, pc := bf16C(g, c, ldc)
			before := g.d.CallCounts()["cuLaunchKernel"]
			g.ok(g.d.MatmulTNDropoutBBF16(Stream{}, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta, m))
			if n, want := g.d.CallCounts()["cuLaunchKernel"]-before, map[bool]int64{true: 2, false: 1}[slices > 1]; n != want {
				t.Errorf("%d launches, want %d (slices %d)", n, want, slices)
			}
			want, mag := matmulRef(true, false, c.M, c.N, c.K, a, lda, bd, ldb, c0, ldc, float64(c.alpha), float64(c.beta))
			got, wantW, magW := gemmWindow(t, g.down(pc, c.M*ldc, BF16), want, mag, c.M, c.N, ldc, c.beta)
			maxUlps, maxRatio, _, _ := checkBF16Output(t, name, got, wantW, magW)
			worst.add(maxUlps, maxRatio, 0, len(got))
		})
	}
	worst.log(t)
	if err := g.d.MatmulTNDropoutBBF16(g.s, 4, 8, 4, 0, 4, 0, 8, 0, 8, 1, 0, LowRankDropout{LDM: 7}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("mask row length < N: err %v, want ErrBadArgument", err)
	}
}

// droppedOut draws a LoRA dropout mask (p = 0.3, a random stream, rows of
// ldm elements) over the [rows, cols] operand x (leading dimension ld) and
// returns it with x dropped out as the kernels compute it: each element
// times its mask value, rounded to bf16 once.
func droppedOut(g *gpu, x []float32, rows, cols, ld, ldm int) (LowRankDropout, []float32) {
	drop, keep := dropout.Threshold(0.3)
	m := LowRankDropout{Key: g.rng.Uint64(), Pos: g.rng.Uint64() >> 8, Drop: drop, Keep: keep, LDM: ldm}
	mask := make([]float32, max(rows*ldm, 1))
	dropout.Mask(mask, m.Key, m.Pos, drop, keep)
	xd := make([]float32, len(x))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			xd[i*ld+j] = half.BF16ToF32(half.F32ToBF16(x[i*ld+j] * mask[i*ldm+j]))
		}
	}
	return m, xd
}

// bf16C makes a case's bf16 C: random values c0 on the device when beta
// reads them, else a NaN-poisoned buffer (beta 0 must not read C).
func bf16C(g *gpu, c gemmCase, ldc int) ([]float32, Ptr) {
	c0 := g.randn(max(c.M*ldc, 1), 1, BF16)
	pc := g.alloc(len(c0) * 2) // NaN-poisoned
	if c.beta != 0 {
		g.ok(CopyHtoD(g.d, pc, toBF16s(c0)))
	}
	return c0, pc
}

// checkBF16Output holds a bf16 GEMM output to 1 bf16 ulp + 1e-4·Σ|terms|
// of its float64 reference (gemm_cbf16_test.go says why), failing the test
// for each value outside (NaN too), and returns the worst error in ulps,
// as a fraction of the bound and absolute, and how many failed.
func checkBF16Output(t *testing.T, name string, got []float32, want, mag []float64) (maxUlps, maxRatio, maxAbs float64, bad int) {
	t.Helper()
	for i, gv := range got {
		r := bf16Round64(want[i])
		v := float64(gv)
		ulp := bf16Ulp(max(math.Abs(r), math.Abs(v)))
		e := math.Abs(v - r)
		allowed := ulp + 1e-4*mag[i]
		maxUlps, maxRatio, maxAbs = max(maxUlps, e/ulp), max(maxRatio, e/allowed), max(maxAbs, e)
		if !(e <= allowed) { // NaN fails too
			if bad < 5 {
				t.Errorf("%s[%d] = %v, want bf16(%v) = %v (err %.3g, allowed %.3g)", name, i, v, want[i], r, e, allowed)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values outside 1 bf16 ulp + 1e-4·Σ|terms|", name, bad, len(got))
	}
	return maxUlps, maxRatio, maxAbs, bad
}
