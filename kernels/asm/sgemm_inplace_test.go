package asm

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The in-place-A path of gemmPacked: with an untransposed float32 A and an
// implementation that has gemmImpl.inplace (AVX-512), whole mr-row
// micro-panels are read where A is stored, only the short last panel of a
// row block is packed. Results are compared with the reference within
// gemmTolerance's bound (sgemm_test.go): the kernel adds the k products in
// another order than GemmRef and with FMA, so each element may differ by
// (2k+4)·u·|alpha|·Σ|a·b| + 4·u·|beta·c|; the integer cases (exact in
// float32 in any order) must match bit for bit. A and B sit in NaN guard
// bands (lda > k leaves NaNs between A's rows), so a read past a row, a
// column or the k range turns the result into NaN; C's guards catch
// writes outside the window, and beta == 0 starts from a NaN-filled C.

// inPlaceCases lists products gemmPacked takes with A in place: n above
// skinnyMaxN (else gemmSkinny runs), row counts around whole 12-row
// panels (whole, one short, one over, several blocks with an edge panel),
// k across k blocks, both B layouts and lda > k.
func inPlaceCases(g *gemmImpl, ks []int) []gemmCase {
	var out []gemmCase
	i := 0
	for _, m := range []int{g.mr, g.mr + 1, 2*g.mr - 1, 2 * g.mr, 3*g.mr + 1, 61} {
		for _, n := range []int{skinnyMaxN + 1, 2*g.nr + 45} {
			for _, k := range ks {
				ab := alphaBetas[i%len(alphaBetas)]
				out = append(out, gemmCase{
					transB: i%2 == 1, m: m, n: n, k: k, alpha: ab[0], beta: ab[1],
					off: i % 4, ldExtra: 1 + i%5,
				})
				i++
			}
		}
	}
	return out
}

func TestSgemmInPlaceA(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(31, 32))
		// Count the in-place kernel's calls, so the test fails if the
		// driver stops taking the path it is meant to cover.
		calls, inplace := 0, g.inplace
		if inplace != nil {
			defer func() { g.inplace = inplace }()
			g.inplace = func(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
				calls++
				inplace(kc, a, lda, b, c, ldc, alpha, beta)
			}
			defer func() {
				if calls == 0 {
					t.Errorf("%s: the in-place-A kernel was never called", g.impl)
				}
			}()
		}
		// Production blocks: k = 300 is two k blocks of 150, the later
		// one accumulating with beta 1.
		for i, tc := range inPlaceCases(g, []int{1, 15, 16, 17, 40, g.kc + 44}) {
			runCase(t, "inplace", rng, tc, uniform(rng), false)
			if i%4 == 0 {
				runCaseBF16(t, "inplace-bf16", rng, tc)
			}
		}
		// Small blocks: several row blocks (in place and packed panels in
		// one block), k blocks of 8 and column blocks of 2 strips.
		defer withBlocking(g, 8, 2*g.mr, 2*g.nr)()
		for _, tc := range inPlaceCases(g, []int{7, 9, 21}) {
			runCase(t, "inplace-small-blocks", rng, tc, uniform(rng), false)
		}
	})
}

func TestSgemmInPlaceAExact(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(33, 34))
		defer withBlocking(g, 16, 3*g.mr, 4*g.nr)()
		runExactCases(t, "inplace-exact", rng, inPlaceCases(g, []int{1, 16, 17, 47}))
	})
}

// TestSgemmInPlaceAParallel splits products above parallelMin over two and
// three workers, by rows (i0 > 0, row counts that are not multiples of
// 12) and by columns (j0 > 0).
func TestSgemmInPlaceAParallel(t *testing.T) {
	defer SetThreads(Threads())
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(35, 36))
		for _, tc := range []gemmCase{
			{m: 301, n: 230, k: 300, alpha: 1, beta: 0, ldExtra: 3},                 // split m
			{m: 130, n: 700, k: 40, alpha: -0.5, beta: 1, transB: true, off: 1},     // split n
			{m: 97, n: 1100, k: 260, alpha: 2, beta: 0, ldExtra: 1, off: 2},         // split n, 2 k blocks
			{m: 1000, n: 100, k: 70, alpha: 0.75, beta: -1.5, transB: true, off: 3}, // split m
			{m: 37, n: 2100, k: 30, alpha: 1, beta: 0.5, ldExtra: 2},                // packed whole, in place split
		} {
			checkThreadSplits(t, rng, tc)
		}
	})
}

// TestInPlaceKernel calls the in-place kernel directly, where the
// implementation has one, on a single 12×32 tile: A's rows lda > kc apart
// with NaNs between them, C rows ldc > 32 apart with NaN guards, every
// k-loop remainder (kc mod 16) and the beta cases (±0 must not read the
// NaN-filled C). Integer operands and power-of-two alpha and beta make
// the result exact, so it must equal the float64 sum.
func TestInPlaceKernel(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		if g.inplace == nil {
			t.Skipf("%s has no in-place-A kernel", g.impl)
		}
		rng := rand.New(rand.NewPCG(37, 38))
		mr, nr := g.mr, g.nr
		nan := float32(math.NaN())
		for _, kc := range []int{1, 2, 15, 16, 17, 31, 33, 256} {
			for _, ab := range [][2]float32{{1, 0}, {2, negZero}, {0.5, 1}, {-1, -2}} {
				alpha, beta := ab[0], ab[1]
				lda, ldc := kc+3, nr+5
				a := make([]float32, mr*lda+4)
				for x := range a {
					a[x] = nan
				}
				for i := 0; i < mr; i++ {
					for p := 0; p < kc; p++ {
						a[i*lda+p] = float32(rng.IntN(7) - 3)
					}
				}
				b := make([]float32, kc*nr)
				for x := range b {
					b[x] = float32(rng.IntN(7) - 3)
				}
				c := make([]float32, mr*ldc)
				for x := range c {
					c[x] = nan
					if beta != 0 && x%ldc < nr {
						c[x] = float32(rng.IntN(9) - 4)
					}
				}
				c0 := append([]float32(nil), c...)
				g.inplace(kc, a, lda, b, c, ldc, alpha, beta)
				for x, v := range c {
					i, j := x/ldc, x%ldc
					if j >= nr {
						if !math.IsNaN(float64(v)) {
							t.Fatalf("kc=%d: guard C[%d][%d] = %g written", kc, i, j, v)
						}
						continue
					}
					var s float64
					for p := 0; p < kc; p++ {
						s += float64(a[i*lda+p]) * float64(b[p*nr+j])
					}
					want := float64(alpha) * s
					if beta != 0 {
						want += float64(beta) * float64(c0[x])
					}
					if float64(v) != want {
						t.Fatalf("kc=%d alpha=%g beta=%g: C[%d][%d] = %g, want %g", kc, alpha, beta, i, j, v, want)
					}
				}
			}
		}
	})
}
