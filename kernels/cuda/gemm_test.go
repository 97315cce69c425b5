package cuda

import (
	"fmt"
	"math"
	"testing"
)

// matmulRef is the float64 reference of Matmul*: it returns alpha*op(A)op(B)
// + beta*C0 and, per element, the sum of |terms| that bounds rounding error.
// gemmWindow returns the M×N window of a GEMM's output got, its reference
// want and magnitudes mag (leading dimension ldc). Only that window is
// output: with beta == 0 the padding columns must stay NaN-poisoned, and
// the test fails if one was written.
func gemmWindow(t testing.TB, got []float32, want, mag []float64, M, N, ldc int, beta float32) (gw []float32, ww, mw []float64) {
	t.Helper()
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			gw = append(gw, got[i*ldc+j])
			ww = append(ww, want[i*ldc+j])
			mw = append(mw, mag[i*ldc+j])
		}
		for j := N; j < ldc; j++ {
			if v := got[i*ldc+j]; v == v && beta == 0 {
				t.Fatalf("padding column C[%d,%d] = %v was written", i, j, v)
			}
		}
	}
	return gw, ww, mw
}

func matmulRef(transA, transB bool, M, N, K int, a []float32, lda int, b []float32, ldb int, c0 []float32, ldc int, alpha, beta float64) (out, mag []float64) {
	out = make([]float64, M*ldc)
	mag = make([]float64, M*ldc)
	for i := 0; i < M; i++ {
		for j := 0; j < N; j++ {
			var s, m float64
			for k := 0; k < K; k++ {
				var av, bv float32
				if transA {
					av = a[k*lda+i]
				} else {
					av = a[i*lda+k]
				}
				if transB {
					bv = b[j*ldb+k]
				} else {
					bv = b[k*ldb+j]
				}
				p := float64(av) * float64(bv)
				s += p
				m += math.Abs(p)
			}
			out[i*ldc+j] = alpha * s
			mag[i*ldc+j] = math.Abs(alpha)*m + 1e-30
			if beta != 0 {
				out[i*ldc+j] += beta * float64(c0[i*ldc+j])
				mag[i*ldc+j] += math.Abs(beta * float64(c0[i*ldc+j]))
			}
		}
	}
	return out, mag
}

// gemmLayout returns how a case's operands are stored for the transposes:
// the rows of A ([M,K], or [K,M] transposed) and of B ([K,N], or [N,K]),
// and the leading dimensions of A, B and C with c.pad extra elements
// (at least 1).
func gemmLayout(ta, tb bool, c gemmCase) (rowsA, rowsB, lda, ldb, ldc int) {
	rowsA, colsA := c.M, c.K
	if ta {
		rowsA, colsA = c.K, c.M
	}
	rowsB, colsB := c.K, c.N
	if tb {
		rowsB, colsB = c.N, c.K
	}
	return rowsA, rowsB, max(colsA+c.pad, 1), max(colsB+c.pad, 1), max(c.N+c.pad, 1)
}

type gemmCase struct {
	M, N, K     int
	pad         int // extra leading-dimension elements
	alpha, beta float32
}

// Sizes around the 128x128x32 tile: 0, 1, tile-1, tile, tile+1, ragged,
// unaligned K (scalar loader path), padded leading dimensions, a multi-tile K.
var gemmCases = []gemmCase{
	{0, 5, 3, 0, 1, 0}, {1, 1, 1, 0, 1, 0}, {5, 7, 0, 0, 1, 0}, {17, 33, 15, 0, 1, 0},
	{127, 129, 31, 0, 1, 0}, {128, 128, 32, 0, 1, 0}, {129, 257, 65, 0, 1, 0},
	{64, 200, 96, 8, 0.5, 0}, {200, 72, 300, 3, 1, 1}, {256, 384, 512, 0, 1, 1},
}

// gemmCasesFor is gemmCases; under the simulator the multi-tile K case has
// K 256 (8 k-tiles, still twice round the 4-stage ring) instead of 512.
func gemmCasesFor() []gemmCase {
	if !Simulated {
		return gemmCases
	}
	cs := append([]gemmCase(nil), gemmCases...)
	cs[len(cs)-1].K = 256
	return cs
}

func TestMatmul(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for _, c := range gemmCasesFor() {
				name := fmt.Sprintf("matmul_%s_%v/M%d_N%d_K%d_pad%d_beta%g", transName(tr[0], tr[1]), dt, c.M, c.N, c.K, c.pad, c.beta)
				t.Run(name, func(t *testing.T) { testMatmul(t, g, dt, tr[0], tr[1], c, name) })
			}
		}
	}
}

func testMatmul(t *testing.T, g *gpu, dt DType, ta, tb bool, c gemmCase, name string) {
	rowsA, rowsB, lda, ldb, ldc := gemmLayout(ta, tb, c)
	a := g.randn(max(rowsA*lda, 1), 1, dt)
	b := g.randn(max(rowsB*ldb, 1), 1, dt)
	c0 := g.randn(max(c.M*ldc, 1), 1, F32)
	pa, pb := g.up(a, dt), g.up(b, dt)
	pc := g.alloc(len(c0) * 4) // NaN-poisoned
	if c.beta != 0 {
		g.ok(CopyHtoD(g.d, pc, c0))
	}
	var err error
	if dt == BF16 {
		err = g.d.MatmulBF16(g.s, ta, tb, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta)
	} else {
		err = g.d.MatmulF32(g.s, ta, tb, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta)
	}
	g.ok(err)
	if c.M == 0 || c.N == 0 {
		return
	}
	want, mag := matmulRef(ta, tb, c.M, c.N, c.K, a, lda, b, ldb, c0, ldc, float64(c.alpha), float64(c.beta))
	got := g.down(pc, c.M*ldc, F32)
	gw, ww, mw := gemmWindow(t, got, want, mag, c.M, c.N, ldc, c.beta)
	// Both variants sum exact products of the (bf16-exact) inputs in float32:
	// the error is float32 accumulation, bounded relative to sum |a b|. The
	// tensor cores' float32 accumulate keeps a few bits less than IEEE fma,
	// hence 1e-4 for bf16 against 1e-5 for the SIMT path.
	tl := tol{0, 1e-5}
	if dt == BF16 {
		tl = tol{0, 1e-4}
	}
	compare(t, name, gw, ww, mw, tl)
}

func TestMatmulBadArgs(t *testing.T) {
	g := needGPU(t)
	if err := g.d.MatmulBF16(g.s, false, true, 4, 4, 8, 0, 7, 0, 8, 0, 4, 1, 0); err == nil {
		t.Error("lda < K accepted")
	}
	if err := g.d.MatmulF32(g.s, false, false, -1, 4, 8, 0, 8, 0, 4, 0, 4, 1, 0); err == nil {
		t.Error("negative M accepted")
	}
}
