package asm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
)

// Tolerance. The reference and the blocked kernels add the same k products
// in different orders (and the kernels use FMA), so each has a rounding
// error of at most gamma_k * sum_p |a_ip||b_pj| with gamma_k ~ k*u,
// u = 2^-24 (Higham, Accuracy and Stability, 3.5). Their difference is
// bounded by twice that, plus a few u for the alpha and beta products:
//
//	|fast - ref| <= (2k+4)*u*|alpha|*sum|a||b| + 4*u*|beta*c|
//
// The integer test below checks exactness where no rounding happens, so
// a wrong index cannot hide inside this bound.
const unitRoundoff = 1.0 / (1 << 24)

// gmat is a row-major matrix stored inside a NaN-filled slice: off NaNs
// before it, ld-cols NaNs after every row and a tail of NaNs after the
// last row, so any read or write outside the window shows up.
type gmat struct {
	data             []float32
	off, ld, r, c    int
	guardTail, total int
}

func newGmat(rng *rand.Rand, r, c, off, ldExtra int, fill func() float32) gmat {
	ld := max(1, c) + ldExtra
	m := gmat{off: off, ld: ld, r: r, c: c, guardTail: 5}
	m.total = off + r*ld + m.guardTail
	m.data = make([]float32, m.total)
	for i := range m.data {
		m.data[i] = float32(math.NaN())
	}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			m.data[off+i*ld+j] = fill()
		}
	}
	return m
}

func (m gmat) win() []float32      { return m.data[m.off:] }
func (m gmat) at(i, j int) float32 { return m.data[m.off+i*m.ld+j] }
func (m gmat) inside(x int) bool   { x -= m.off; return x >= 0 && x < m.r*m.ld && x%m.ld < m.c }
func (m gmat) clone() gmat         { n := m; n.data = append([]float32(nil), m.data...); return n }
func uniform(rng *rand.Rand) func() float32 {
	return func() float32 { return float32(rng.Float64()*2 - 1) }
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	off, ldExtra   int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g off=%d ld+%d",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.off, tc.ldExtra)
}

// operands builds A, B and C for tc; when beta == 0 the C window is NaN
// too, since Sgemm must overwrite it without reading.
func (tc gemmCase) operands(rng *rand.Rand, fill func() float32) (a, b, c gmat) {
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	a = newGmat(rng, ar, ac, tc.off, tc.ldExtra, fill)
	b = newGmat(rng, br, bc, (tc.off+1)%4, tc.ldExtra+1, fill)
	cfill := fill
	if tc.beta == 0 {
		cfill = func() float32 { return float32(math.NaN()) }
	}
	c = newGmat(rng, tc.m, tc.n, (tc.off+2)%4, tc.ldExtra+2, cfill)
	return a, b, c
}

// gemmTolerance is the bound above for every element of C (m×n, row-major),
// or zeros when exact.
func gemmTolerance(tc gemmCase, a, b, c0 gmat, exact bool) []float64 {
	tol := make([]float64, tc.m*tc.n)
	if exact {
		return tol
	}
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			var sum float64
			for p := 0; p < tc.k; p++ {
				var av, bv float32
				if tc.transA {
					av = a.at(p, i)
				} else {
					av = a.at(i, p)
				}
				if tc.transB {
					bv = b.at(j, p)
				} else {
					bv = b.at(p, j)
				}
				sum += math.Abs(float64(av) * float64(bv))
			}
			t := float64(2*tc.k+4)*unitRoundoff*math.Abs(float64(tc.alpha))*sum + 1e-30
			if tc.beta != 0 {
				t += 4 * unitRoundoff * math.Abs(float64(tc.beta)*float64(c0.at(i, j)))
			}
			tol[i*tc.n+j] = t
		}
	}
	return tol
}

// checkGemmResult compares got with want (both C after the call) inside
// the window within the stated bound, and demands every guard value is
// still NaN.
func checkGemmResult(t *testing.T, name string, tc gemmCase, a, b, c0, got, want gmat, exact bool) {
	t.Helper()
	checkAgainst(t, name, tc, got, want, gemmTolerance(tc, a, b, c0, exact))
}

func checkAgainst(t *testing.T, name string, tc gemmCase, got, want gmat, tol []float64) {
	t.Helper()
	for x, v := range got.data {
		if !got.inside(x) && !math.IsNaN(float64(v)) {
			t.Errorf("%s %v: guard C[%d] = %g written outside the %d×%d window", name, tc, x, v, tc.m, tc.n)
			return
		}
	}
	bad := 0
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			g, w := float64(got.at(i, j)), float64(want.at(i, j))
			if math.IsNaN(g) || math.Abs(g-w) > tol[i*tc.n+j] {
				if bad++; bad <= 3 {
					t.Errorf("%s %v: C[%d,%d] = %g, want %g (tol %.3g)", name, tc, i, j, g, w, tol[i*tc.n+j])
				}
			}
		}
	}
}

// runCase runs Sgemm and GemmRef on the same operands and compares.
func runCase(t *testing.T, name string, rng *rand.Rand, tc gemmCase, fill func() float32, exact bool) {
	t.Helper()
	a, b, c := tc.operands(rng, fill)
	want, got := c.clone(), c.clone()
	GemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, want.win(), want.ld)
	Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, got.win(), got.ld)
	checkGemmResult(t, name, tc, a, b, c, got, want, exact)
}

// runExactCases runs cases on small integers, whose products and sums are
// exact in float32 in any order, with power-of-two alpha and beta cycling
// over the cases: the result must equal the reference bit for bit, so any
// misplaced row, column or k step shows.
func runExactCases(t *testing.T, name string, rng *rand.Rand, cases []gemmCase) {
	t.Helper()
	ints := func() float32 { return float32(rng.IntN(7) - 3) }
	for i, tc := range cases {
		tc.alpha, tc.beta = []float32{1, 2, 0.5, -1}[i%4], []float32{0, 1, -2, 0.25}[(i/4)%4]
		runCase(t, name, rng, tc, ints, true)
	}
}

// forEachImpl runs f with every implementation this CPU and build offer.
func forEachImpl(t *testing.T, f func(t *testing.T, g *gemmImpl)) {
	saved := CurrentImpl()
	defer SetImpl(saved)
	for _, impl := range Available() {
		if err := SetImpl(impl); err != nil {
			t.Fatal(err)
		}
		t.Run(string(impl), func(t *testing.T) { f(t, gemmCur) })
	}
}

// withBlocking shrinks g's cache blocks so small matrices cross every
// block boundary (several ic, pc and jc blocks), then restores them.
func withBlocking(g *gemmImpl, kc, mc, nc int) (restore func()) {
	saved := *g
	g.kc, g.mc, g.nc = kc, mc, nc
	return func() { *g = saved }
}

// negZero is float32 -0 (the literal -0.0 is +0 in Go): beta = -0 must
// still mean "C is not read", as beta = +0 does.
var negZero = float32(math.Copysign(0, -1))

var alphaBetas = [][2]float32{{1, 0}, {1, 1}, {-0.5, 2}, {2, 0}, {0.75, -1.5}, {1, negZero}}

// shapeCases lists m, n, k around the tile sizes (0 handled elsewhere):
// 1, tile-1, tile, tile+1 and a size spanning several blocks.
func shapeCases(g *gemmImpl, ks []int) []gemmCase {
	ms := []int{1, g.mr - 1, g.mr, g.mr + 1, 2*g.mc + g.mr + 1}
	ns := []int{1, g.nr - 1, g.nr, g.nr + 1, 2*g.nc + 3}
	var out []gemmCase
	i := 0
	for _, m := range ms {
		for _, n := range ns {
			for _, k := range ks {
				for tr := 0; tr < 4; tr++ {
					if m < 1 || n < 1 {
						continue
					}
					ab := alphaBetas[i%len(alphaBetas)]
					out = append(out, gemmCase{
						transA: tr&1 != 0, transB: tr&2 != 0,
						m: m, n: n, k: k, alpha: ab[0], beta: ab[1],
						off: i % 4, ldExtra: (i / 4) % 3,
					})
					i++
				}
			}
		}
	}
	return out
}

func TestSgemmShapes(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(1, 2))
		// Small blocks: every loop of the driver runs several times.
		restore := withBlocking(g, 8, 2*g.mr, 2*g.nr)
		for _, tc := range shapeCases(g, []int{1, 7, 8, 9, 21}) {
			runCase(t, "small-blocks", rng, tc, uniform(rng), false)
		}
		restore()
		// Production blocks, k around kc.
		ks := []int{1, 5, g.kc - 1, g.kc, g.kc + 1}
		for _, tc := range shapeCases(&gemmImpl{mr: g.mr, nr: g.nr, mc: 1, nc: 1}, ks) {
			runCase(t, "default-blocks", rng, tc, uniform(rng), false)
		}
	})
}

// TestSgemmExact uses small integers, whose products and sums are exact in
// float32 in any order, with power-of-two alpha and beta: the result must
// equal the reference bit for bit.
func TestSgemmExact(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(3, 4))
		defer withBlocking(g, 16, 3*g.mr, 2*g.nr)()
		runExactCases(t, "exact", rng, shapeCases(g, []int{1, 15, 16, 17, 40}))
	})
}

// TestSgemmParallel runs sizes above parallelMin with several worker
// counts, so the m split, the n split and grids of both are taken (4, 6
// and 16 workers), including more workers than tiles.
func TestSgemmParallel(t *testing.T) {
	defer SetThreads(Threads())
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(5, 6))
		cases := []gemmCase{
			{m: 100, n: 300, k: 90, alpha: 1, beta: 0},                              // split n
			{m: 333, n: 70, k: 100, alpha: 1.5, beta: -1, transA: true},             // split m
			{m: 20, n: 1200, k: 100, alpha: 1, beta: 1, transB: true, off: 3},       // few rows
			{m: 1000, n: 17, k: 130, alpha: 1, beta: 0, transA: true, transB: true}, // few columns
			{m: 5, n: 4001, k: 120, alpha: -1, beta: 0.5, ldExtra: 1},               // few rows, B in place
		}
		for _, tc := range cases {
			if tc.m*tc.n*tc.k < parallelMin {
				t.Fatalf("case %v is below parallelMin and would not test the split", tc)
			}
			a, b, c := tc.operands(rng, uniform(rng))
			want := c.clone()
			GemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, want.win(), want.ld)
			tol := gemmTolerance(tc, a, b, c, false)
			for _, th := range []int{1, 2, 3, 4, 6, 7, 16} {
				SetThreads(th)
				got := c.clone()
				Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, got.win(), got.ld)
				checkAgainst(t, fmt.Sprintf("threads=%d", th), tc, got, want, tol)
			}
		}
	})
}

// TestSplitRect: the rectangles tile the output exactly once, start on
// panel and strip boundaries, number at most the workers, and form the
// grid splitGrid describes on a few shapes.
func TestSplitRect(t *testing.T) {
	for _, tile := range [][2]int{{12, 32}, {8, 12}, {4, 4}} {
		mr, nr := tile[0], tile[1]
		for _, m := range []int{1, 5, 12, 13, 100, 513} {
			for _, n := range []int{1, 31, 32, 33, 576, 2048} {
				for workers := 1; workers <= 17; workers++ {
					var mu sync.Mutex
					cover := make([]int, m*n)
					rects := 0
					splitRect(workers, m, n, mr, nr, func(i0, h, j0, w int) {
						mu.Lock()
						defer mu.Unlock()
						rects++
						if h <= 0 || w <= 0 || i0%mr != 0 || j0%nr != 0 {
							t.Errorf("%dx%d tiles %dx%d, %d workers: rectangle at (%d,%d) of %dx%d", m, n, mr, nr, workers, i0, j0, h, w)
						}
						for i := i0; i < i0+h; i++ {
							for j := j0; j < j0+w; j++ {
								cover[i*n+j]++
							}
						}
					})
					if rects > workers {
						t.Errorf("%dx%d, %d workers: %d rectangles", m, n, workers, rects)
					}
					for e, c := range cover {
						if c != 1 {
							t.Fatalf("%dx%d tiles %dx%d, %d workers: element (%d,%d) covered %d times", m, n, mr, nr, workers, e/n, e%n, c)
						}
					}
				}
			}
		}
	}
	for _, c := range []struct{ t, m, n, pm, pn int }{
		{2, 512, 576, 1, 2},    // the longer side
		{2, 576, 512, 2, 1},    //
		{16, 512, 576, 4, 4},   // m/4 + n/4 = 272 rows and columns a worker, against 548 as 1×16
		{16, 512, 8192, 1, 16}, // 1024 as 1×16, 1280 as 2×8
		{8, 2048, 2048, 2, 4},  // ties go to fewer row parts
		{7, 512, 576, 1, 7},    // a prime: one row of rectangles
		{4, 512, 20, 4, 1},     // one strip of columns: rows only
		{16, 24, 64, 2, 2},     // 2 panels by 2 strips: 4 workers at most
	} {
		pm, pn := splitGrid(c.t, c.m, c.n, (c.m+11)/12, (c.n+31)/32)
		if pm != c.pm || pn != c.pn {
			t.Errorf("splitGrid(%d workers, %dx%d) = %d×%d, want %d×%d", c.t, c.m, c.n, pm, pn, c.pm, c.pn)
		}
	}
}

// TestSgemmDegenerate covers m, n or k = 0 and alpha = 0: C = beta*C, and
// A and B are not read (they hold NaN here).
func TestSgemmDegenerate(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(7, 8))
		nan := func() float32 { return float32(math.NaN()) }
		for _, tc := range []gemmCase{
			{m: 0, n: 5, k: 3, alpha: 1, beta: 1},
			{m: 5, n: 0, k: 3, alpha: 1, beta: 1},
			{m: 5, n: 7, k: 0, alpha: 1, beta: 0},
			{m: 5, n: 7, k: 0, alpha: 1, beta: 2},
			{m: 5, n: 7, k: 4, alpha: 0, beta: 0.5, transA: true},
			{m: 5, n: 7, k: 4, alpha: 0, beta: 0},
		} {
			_, _, c := tc.operands(rng, uniform(rng))
			if tc.beta == 0 {
				c = newGmat(rng, tc.m, tc.n, 1, 1, nan)
			}
			a, b, _ := tc.operands(rng, nan)
			want, got := c.clone(), c.clone()
			GemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, want.win(), want.ld)
			Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, got.win(), got.ld)
			for i := 0; i < tc.m; i++ {
				for j := 0; j < tc.n; j++ {
					w := float32(0)
					if tc.beta != 0 {
						w = tc.beta * c.at(i, j)
					}
					if got.at(i, j) != w || want.at(i, j) != w {
						t.Errorf("%v: C[%d,%d] = %g (ref %g), want beta*C = %g", tc, i, j, got.at(i, j), want.at(i, j), w)
					}
				}
			}
			for x, v := range got.data {
				if !got.inside(x) && !math.IsNaN(float64(v)) {
					t.Errorf("%v: guard C[%d] written", tc, x)
				}
			}
		}
	})
}

// TestSgemmFewRows covers every row count up to the largest tile, where
// B is read in place: by a kernel per row count for a k×n B (gemmFewRows),
// by 8-row dot products for a stored n×k one (gemmDotRows, float32 and
// bf16). Column counts sit around the 8/32/64-wide strips, k across a kc
// boundary and the 16-wide dot tail.
func TestSgemmFewRows(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(13, 14))
		i := 0
		for m := 1; m <= 13; m++ {
			for _, n := range []int{31, 63, 64, 65, 130} {
				for _, k := range []int{1, 9, g.kc + 3} {
					ab := alphaBetas[i%len(alphaBetas)]
					tc := gemmCase{transA: i%2 == 1, transB: (i/2)%2 == 1, m: m, n: n, k: k, alpha: ab[0], beta: ab[1], off: i % 4, ldExtra: i % 3}
					runCase(t, "few-rows", rng, tc, uniform(rng), false)
					runCaseBF16(t, "few-rows-bf16", rng, tc)
					i++
				}
			}
		}
	})
}

// TestSgemmSerial: SgemmSerial runs on the caller alone and gives what Sgemm
// gives with one thread, bit for bit (same blocking, same order), for a
// product big enough that Sgemm would split it.
func TestSgemmSerial(t *testing.T) {
	defer SetThreads(Threads())
	m, n, k := 96, 160, 200 // m·n·k above parallelMin
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(i%13) - 6
	}
	for i := range b {
		b[i] = float32(i%7)*0.25 - 0.5
	}
	want, got := make([]float32, m*n), make([]float32, m*n)
	SetThreads(1)
	Sgemm(false, false, m, n, k, 0.5, a, k, b, n, 0, want, n)
	SetThreads(4)
	SgemmSerial(false, false, m, n, k, 0.5, a, k, b, n, 0, got, n)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("[%d] = %v, single-thread Sgemm %v", i, got[i], want[i])
		}
	}
}
