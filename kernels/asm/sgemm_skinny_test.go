package asm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// The LoRA-rank paths: gemmSkinny (few columns, A read in place) and the
// 16-row strided kernel (m = 16 rows of a transposed rank-16 activation
// against a big B read in place). Every case goes through Sgemm (or
// SgemmBF16) and is compared with the reference within gemmTolerance's
// bound: the kernels add the k products in another order than the
// reference and with FMA, so each result may differ by
// (2k+4)·u·|alpha|·Σ|a·b| + 4·u·|beta·c| (see sgemm_test.go), and the
// integer cases must match bit for bit. A and B carry NaN guard bands, so
// reading past a row, a column or the k range shows up as NaN in C; C's
// guards catch writes outside the window, and beta == 0 cases start with a
// NaN-filled C that must not leak through.

// skinnyCases lists products that useSkinny takes (transA false, m >= 16,
// n <= skinnyMaxN) around its edges: m tails past whole 16-row blocks,
// n tails inside a 16-column strip, k across kc blocks.
func skinnyCases(kc int) []gemmCase {
	var out []gemmCase
	i := 0
	for _, m := range []int{16, 17, 31, 32, 45} {
		for _, n := range []int{1, 8, 15, 16, 17, 40, skinnyMaxN} {
			for _, k := range []int{1, 15, 16, kc + 3} {
				ab := alphaBetas[i%len(alphaBetas)]
				out = append(out, gemmCase{
					transB: i%2 == 1, m: m, n: n, k: k, alpha: ab[0], beta: ab[1],
					off: i % 4, ldExtra: (i / 2) % 3,
				})
				i++
			}
		}
	}
	return out
}

func TestSgemmSkinny(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(21, 22))
		// Small k blocks cross several kc boundaries at small k.
		restore := withBlocking(g, 8, g.mc, g.nc)
		for _, tc := range skinnyCases(g.kc) {
			runCase(t, "skinny-small-kc", rng, tc, uniform(rng), false)
		}
		restore()
		for i, tc := range skinnyCases(g.kc) {
			runCase(t, "skinny", rng, tc, uniform(rng), false)
			if i%3 == 0 {
				runCaseBF16(t, "skinny-bf16", rng, tc)
			}
		}
	})
}

// TestSgemmSkinnyExact uses small integers (exact in float32 in any
// order) with power-of-two alpha and beta: any misplaced row, column or k
// step changes the result.
func TestSgemmSkinnyExact(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(23, 24))
		defer withBlocking(g, 16, g.mc, g.nc)()
		runExactCases(t, "skinny-exact", rng, skinnyCases(40))
		runExactCases(t, "rank16-exact", rng, rank16Cases())
	})
}

// rank16Cases are products with 13..16 rows and a row-major B, where the
// 16-row strided kernel applies: dBᵀ = hᵀ·g and dA = dhᵀ·x with h and dh
// stored [tokens, 16] (transA), and also untransposed A. n around the
// 16-column strips, k around its 64-step k block.
func rank16Cases() []gemmCase {
	var out []gemmCase
	i := 0
	for _, m := range []int{13, 15, 16} {
		for _, n := range []int{16, 17, 31, 47, 100} {
			for _, k := range []int{1, 63, 64, 65, 200} {
				ab := alphaBetas[i%len(alphaBetas)]
				out = append(out, gemmCase{
					transA: i%3 != 0, m: m, n: n, k: k, alpha: ab[0], beta: ab[1],
					off: i % 4, ldExtra: (i / 3) % 3,
				})
				i++
			}
		}
	}
	return out
}

func TestSgemmRank16Rows(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(25, 26))
		for _, tc := range rank16Cases() {
			runCase(t, "rank16", rng, tc, uniform(rng), false)
		}
		// k blocks of 8 (below the strided kernel's own cap of 64).
		defer withBlocking(g, 8, g.mc, g.nc)()
		for _, tc := range rank16Cases() {
			runCase(t, "rank16-small-kc", rng, tc, uniform(rng), false)
		}
	})
}

// TestSgemmRankParallel runs LoRA-shaped products above parallelMin with
// two and three workers, so the split hands gemmSkinny and the strided
// kernel sub-rectangles (i0, j0 > 0, row counts that are not multiples of
// 16, column ranges starting mid-matrix).
func TestSgemmRankParallel(t *testing.T) {
	defer SetThreads(Threads())
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(27, 28))
		for _, tc := range []gemmCase{
			{m: 1030, n: 16, k: 200, alpha: 1, beta: 0, transB: true, off: 1},       // h = x·Aᵀ
			{m: 999, n: 16, k: 150, alpha: 2, beta: 0, ldExtra: 2},                  // dh = g·B
			{m: 16, n: 700, k: 300, alpha: 2, beta: 0, transA: true, off: 3},        // dBᵀ = hᵀ·g
			{m: 16, n: 333, k: 500, alpha: 1, beta: 1, transA: true, ldExtra: 1},    // dA += dhᵀ·x
			{m: 700, n: 40, k: 90, alpha: -0.5, beta: 1.5, transB: true, off: 2},    // rank 40
			{m: 2000, n: 9, k: 130, alpha: 1, beta: -1, ldExtra: 1},                 // rank 9
			{m: 15, n: 900, k: 200, alpha: 1, beta: 0, transA: true, ldExtra: 2},    // 15 rows
			{m: 300, n: 96, k: 80, alpha: 0.75, beta: 0, transB: true, ldExtra: 1},  // widest skinny
			{m: 300, n: 97, k: 80, alpha: 0.75, beta: 0, transB: false, ldExtra: 1}, // packed again
		} {
			checkThreadSplits(t, rng, tc)
		}
	})
}

// TestSkinnyDispatch pins which path the LoRA shapes take with AVX-512,
// so the tests above exercise the new kernels and not only the old paths.
func TestSkinnyDispatch(t *testing.T) {
	g := gemmFor(ImplAVX512)
	if g.impl != ImplAVX512 {
		t.Skip("no AVX-512 implementation in this build")
	}
	for _, c := range []struct {
		transA bool
		m, n   int
		want   bool
	}{
		{false, 2048, 16, true}, {false, 16, 1, true}, {false, 2048, skinnyMaxN, true},
		{false, 15, 16, false}, {false, 2048, skinnyMaxN + 1, false}, {true, 2048, 16, false},
	} {
		if got := useSkinny(g, c.transA, c.m, c.n); got != c.want {
			t.Errorf("useSkinny(transA=%v, m=%d, n=%d) = %v, want %v", c.transA, c.m, c.n, got, c.want)
		}
	}
	var s16 *stridedKernel
	for i := range g.strided {
		if s := &g.strided[i]; 16 <= s.mr {
			s16 = s
			break
		}
	}
	if s16 == nil || s16.mr != 16 || s16.nr != 16 {
		t.Fatalf("no 16-row strided kernel for m=16: %+v", s16)
	}
}

// BenchmarkSkinnyLoRA times the four thin LoRA products (r=16, M=2048
// tokens) with as many workers as GOMAXPROCS, so -cpu 1,2 compares one
// and two threads (BenchmarkLoRAShapes pins one).
func BenchmarkSkinnyLoRA(b *testing.B) {
	defer SetThreads(Threads())
	M, r := 2048, 16
	for _, io := range [][2]int{{256, 704}, {704, 256}} {
		in, out := io[0], io[1]
		x := make([]float32, M*in)
		g := make([]float32, M*out)
		for i := range x {
			x[i] = float32(math.Sin(float64(i)))
		}
		for i := range g {
			g[i] = float32(math.Cos(float64(i)))
		}
		A, B := make([]float32, r*in), make([]float32, out*r)
		h, dh := make([]float32, M*r), make([]float32, M*r)
		dA, dBt := make([]float32, r*in), make([]float32, r*out)
		for _, c := range []struct {
			name  string
			flops int
			f     func()
		}{
			{"h=xAt", 2 * M * in * r, func() { Sgemm(false, true, M, r, in, 1, x, in, A, in, 0, h, r) }},
			{"dh=gB", 2 * M * out * r, func() { Sgemm(false, false, M, r, out, 1, g, out, B, r, 0, dh, r) }},
			{"dBt=htg", 2 * M * out * r, func() { Sgemm(true, false, r, out, M, 1, h, r, g, out, 0, dBt, out) }},
			{"dA=dhtx", 2 * M * in * r, func() { Sgemm(true, false, r, in, M, 1, dh, r, x, in, 0, dA, in) }},
		} {
			b.Run(fmt.Sprintf("%dto%d/%s", in, out, c.name), func(b *testing.B) {
				SetThreads(runtime.GOMAXPROCS(0))
				for i := 0; i < b.N; i++ {
					c.f()
				}
				b.ReportMetric(float64(c.flops)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// checkThreadSplits runs Sgemm on tc with 1, 2 and 3 threads (tc must be
// above parallelMin, so that the product is really split) and checks each
// against the reference.
func checkThreadSplits(t *testing.T, rng *rand.Rand, tc gemmCase) {
	t.Helper()
	if tc.m*tc.n*tc.k < parallelMin {
		t.Fatalf("case %v is below parallelMin and would not test the split", tc)
	}
	a, b, c := tc.operands(rng, uniform(rng))
	want := c.clone()
	GemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, want.win(), want.ld)
	tol := gemmTolerance(tc, a, b, c, false)
	for _, th := range []int{1, 2, 3} {
		SetThreads(th)
		got := c.clone()
		Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, got.win(), got.ld)
		checkAgainst(t, fmt.Sprintf("threads=%d", th), tc, got, want, tol)
	}
}
