package cuda

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// The _cbf16 GEMMs (C stored as bf16) are checked two ways per element:
//
//   - against the float64 product of the same bf16 operands, rounded to bf16
//     (bf16Round64): |got - bf16(ref)| <= 1 bf16 ulp + 1e-4·Σ|terms|. The
//     1e-4 is the f32-output GEMM's bound for the tensor cores' float32
//     accumulation (gemm_test.go: it keeps a few bits less than IEEE fma);
//     the kernel rounds that float32 value v once, and rounding is monotone,
//     so bf16(v) is within 1 ulp + |v - ref| of bf16(ref) (1 ulp, not half:
//     v and ref may sit on either side of a rounding boundary).
//   - bit for bit against the bf16 rounding (nearest even) of the f32-output
//     kernel's C on the same inputs (C0 is bf16-exact, so both read the same
//     C): the two instantiations share the template and its epilogue's
//     float32 arithmetic, so only the final rounding may differ. The first
//     check alone cannot tell a truncating store from a rounding one (both
//     are within 1 ulp); this one does.

// cbf16Cases: sizes 0 and 1, K = 0 with beta 0 and 1 (C = beta·C), ragged
// around the 128x128x32 tile and not multiples of 8 (element loader path),
// padded leading dimensions, alpha != 1 with beta 0 (NaN-poisoned C) and
// with beta 1, and a K of 8 k-tiles (twice round the cp.async ring).
var cbf16Cases = []gemmCase{
	{0, 5, 3, 0, 1, 0}, {1, 1, 1, 0, 1, 0}, {5, 7, 0, 0, 1, 0}, {5, 7, 0, 1, 0.5, 1},
	{17, 33, 15, 0, 1, 0}, {127, 129, 31, 0, -1.5, 1}, {129, 257, 65, 0, 1, 0},
	{64, 200, 96, 8, 0.5, 0}, {200, 72, 300, 3, -0.75, 1}, {33, 131, 201, 5, 2, 1}, {130, 136, 256, 0, 1, 1},
}

// cbf16Worst is the worst error over a test's subtests, for its log line:
// in bf16 ulps against bf16(ref), and as a fraction of the allowed bound.
// acc is the worst float32 accumulation error, |f32 C - ref| / Σ|terms|,
// which is what turns into several bf16 ulps where the sum cancels (|ref|
// far below Σ|terms|).
type cbf16Worst struct {
	mu               sync.Mutex
	ulps, ratio, acc float64
	n                int
}

func (w *cbf16Worst) add(ulps, ratio, acc float64, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ulps, w.ratio, w.acc, w.n = max(w.ulps, ulps), max(w.ratio, ratio), max(w.acc, acc), w.n+n
}

func (w *cbf16Worst) log(t *testing.T) {
	t.Logf("%d outputs: worst |got - bf16(ref)| = %.3g bf16 ulp, %.3g of the bound (1 ulp + 1e-4·Σ|terms|); worst float32 accumulation error %.3g·Σ|terms|",
		w.n, w.ulps, w.ratio, w.acc)
}

// bf16Ulp is the spacing of bf16 values at magnitude |x| (8 significant
// bits; the subnormal spacing 2^-133 at the bottom).
func bf16Ulp(x float64) float64 {
	_, e := math.Frexp(math.Abs(x)) // |x| in [2^(e-1), 2^e)
	return math.Ldexp(1, max(e-8, -133))
}

// bf16Round64 rounds x to bf16, nearest even, directly from float64 (no
// double rounding through float32). Scaling by the power-of-two ulp is
// exact, so RoundToEven sees x's bits as they are.
func bf16Round64(x float64) float64 {
	if x == 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return x
	}
	u := bf16Ulp(x)
	return math.RoundToEven(x/u) * u
}

// testGemmCBF16 runs one product twice, launch(BF16, C) and launch(F32, C)
// from the same C0 (beta != 0; NaN-poisoned otherwise), and checks the bf16
// C against ref (the float64 product and Σ|terms|, matmulRef's) and against
// the f32 C rounded to bf16.
func testGemmCBF16(t *testing.T, g *gpu, c gemmCase, ldc int, name string, worst *cbf16Worst,
	launch func(out DType, pc Ptr) error, ref func(c0 []float32) (want, mag []float64)) {
	c0 := g.randn(max(c.M*ldc, 1), 1, BF16) // bf16-exact: both kernels read the same C
	pb := g.alloc(len(c0) * 2)              // NaN-poisoned
	pf := g.alloc(len(c0) * 4)
	if c.beta != 0 {
		g.ok(CopyHtoD(g.d, pb, toBF16s(c0)))
		g.ok(CopyHtoD(g.d, pf, c0))
	}
	g.ok(launch(BF16, pb))
	g.ok(launch(F32, pf))
	if c.M == 0 || c.N == 0 {
		return
	}
	want, mag := ref(c0)
	gotB, wantW, magW := gemmWindow(t, g.down(pb, c.M*ldc, BF16), want, mag, c.M, c.N, ldc, c.beta)
	gotF, _, _ := gemmWindow(t, g.down(pf, c.M*ldc, F32), want, mag, c.M, c.N, ldc, c.beta)
	var maxAcc float64
	mismatch := 0
	for i, gv := range gotB {
		if b, f := half.F32ToBF16(gv), half.F32ToBF16(gotF[i]); b != f || math.IsNaN(float64(gv)) {
			if mismatch < 5 {
				t.Errorf("%s[%d] = %v (bits %#04x), want bf16 of the f32 kernel's %v (bits %#04x)", name, i, gv, b, gotF[i], f)
			}
			mismatch++
		}
		maxAcc = max(maxAcc, math.Abs(float64(gotF[i])-wantW[i])/magW[i])
	}
	if mismatch > 0 {
		t.Errorf("%s: %d of %d values differ from the f32 kernel's rounded to bf16", name, mismatch, len(gotB))
	}
	maxUlps, maxRatio, maxAbs, bad := checkBF16Output(t, name, gotB, wantW, magW)
	worst.add(maxUlps, maxRatio, maxAcc, len(gotB))
	record(name, len(gotB), maxAbs, maxUlps, maxRatio, tol{0, 1e-4}, bad == 0 && mismatch == 0)
}

func TestMatmulCBF16(t *testing.T) {
	g := needGPU(t)
	var worst cbf16Worst
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		ta, tb := tr[0], tr[1]
		for _, c := range cbf16Cases {
			name := fmt.Sprintf("matmul_%s_cbf16_fwd_bf16/M%d_N%d_K%d_pad%d_alpha%g_beta%g", transName(ta, tb), c.M, c.N, c.K, c.pad, c.alpha, c.beta)
			t.Run(name, func(t *testing.T) {
				rowsA, rowsB, lda, ldb, ldc := gemmLayout(ta, tb, c)
				a := g.randn(max(rowsA*lda, 1), 1, BF16)
				b := g.randn(max(rowsB*ldb, 1), 1, BF16)
				pa, pb := g.up(a, BF16), g.up(b, BF16)
				testGemmCBF16(t, g, c, ldc, name, &worst,
					func(out DType, pc Ptr) error {
						return g.d.MatmulBF16To(g.s, out, ta, tb, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta)
					},
					func(c0 []float32) ([]float64, []float64) {
						return matmulRef(ta, tb, c.M, c.N, c.K, a, lda, b, ldb, c0, ldc, float64(c.alpha), float64(c.beta))
					})
			})
		}
	}
	worst.log(t)
}

// NF4 and double-quantized NF4 with C in bf16, both orientations: row
// lengths a multiple of 64, of 8 only and odd (the loaders' 4-byte and
// element paths), block sizes 64 and 24 (not a multiple of 8).
var nf4CBF16Cases = []gemmCase{
	{1, 1, 1, 0, 1, 0}, {5, 7, 0, 0, 0.5, 1}, {17, 72, 15, 0, 1, 0}, {127, 129, 31, 0, -1.5, 1},
	{64, 200, 96, 8, 0.5, 0}, {33, 131, 201, 5, 2, 1}, {100, 136, 130, 3, 1, 1},
}

func TestMatmulNF4CBF16(t *testing.T) {
	g := needGPU(t)
	var worst cbf16Worst
	for _, dq := range []bool{false, true} {
		for _, transB := range []bool{true, false} {
			for _, c := range nf4CBF16Cases {
				for _, bs := range []int{64, 24} {
					kind := "nf4"
					if dq {
						kind = "nf4dq"
					}
					name := fmt.Sprintf("matmul_%s_%s_cbf16_fwd_bf16/M%d_N%d_K%d_pad%d_alpha%g_beta%g_bs%d",
						transName(false, transB), kind, c.M, c.N, c.K, c.pad, c.alpha, c.beta, bs)
					t.Run(name, func(t *testing.T) { testMatmulNF4CBF16(t, g, false, dq, transB, c, bs, name, &worst) })
				}
			}
		}
	}
	worst.log(t)
}

// testMatmulNF4CBF16 runs one NF4 case on gemm.cu's kernels or, with
// wgmma, gemm_sm90.cu's (lda rounded up to their multiple of 8).
func testMatmulNF4CBF16(t *testing.T, g *gpu, wgmma, dq, transB bool, c gemmCase, bs int, name string, worst *cbf16Worst) {
	lda, ldc := max(c.K+c.pad, 1), max(c.N+c.pad, 1)
	if wgmma {
		lda = (lda + 7) / 8 * 8
	}
	a := g.randn(max(c.M*lda, 1), 1, BF16)
	pa := g.up(a, BF16)
	rows, cols := c.K, c.N // W's shape as stored
	if transB {
		rows, cols = c.N, c.K
	}
	var w []float32 // the weight as the tile loader makes it: bf16, bit for bit
	var launch func(out DType, pc Ptr) error
	if dq {
		q := newNF4DQ(g, rows*cols, bs, 3) // nested blocks of 3: many even when small
		w = make([]float32, rows*cols)
		for i := range w {
			w[i] = half.BF16ToF32(half.F32ToBF16(q.value(i, bs)))
		}
		pp, nq := q.upload(g)
		launch = func(out DType, pc Ptr) error {
			if wgmma {
				return g.d.MatmulWGMMANF4BF16To(g.s, out, transB, c.M, c.N, c.K, pa, lda, pp, 0, bs, &nq, pc, ldc, c.alpha, c.beta)
			}
			return g.d.MatmulNF4DQBF16To(g.s, out, transB, c.M, c.N, c.K, pa, lda, pp, bs, nq, pc, ldc, c.alpha, c.beta)
		}
	} else {
		var packed []uint8
		var absmax []float32
		packed, absmax, w = nf4Weight(g, rows, cols, bs)
		pp := g.alloc(len(packed))
		g.ok(CopyHtoD(g.d, pp, packed))
		pm := g.up(absmax, F32)
		launch = func(out DType, pc Ptr) error {
			if wgmma {
				return g.d.MatmulWGMMANF4BF16To(g.s, out, transB, c.M, c.N, c.K, pa, lda, pp, pm, bs, nil, pc, ldc, c.alpha, c.beta)
			}
			return g.d.MatmulNF4BF16To(g.s, out, transB, c.M, c.N, c.K, pa, lda, pp, pm, bs, pc, ldc, c.alpha, c.beta)
		}
	}
	testGemmCBF16(t, g, c, ldc, name, worst, launch, func(c0 []float32) ([]float64, []float64) {
		return matmulRef(false, transB, c.M, c.N, c.K, a, lda, w, max(cols, 1), c0, ldc, float64(c.alpha), float64(c.beta))
	})
}

// TestGemmOutBadArgs: a C type no kernel is built for is refused before
// any launch, naming the type.
func TestGemmOutBadArgs(t *testing.T) {
	g := needGPU(t)
	errs := map[string]error{
		"MatmulBF16To":      g.d.MatmulBF16To(g.s, F64, false, true, 4, 4, 8, 0, 8, 0, 8, 0, 4, 1, 0),
		"MatmulNF4BF16To":   g.d.MatmulNF4BF16To(g.s, I32, true, 4, 4, 8, 0, 8, 0, 0, 64, 0, 4, 1, 0),
		"MatmulNF4DQBF16To": g.d.MatmulNF4DQBF16To(g.s, F64, false, 4, 4, 8, 0, 8, 0, 64, NF4Nested{NestedBlockSize: 256}, 0, 4, 1, 0),
	}
	for op, err := range errs {
		if !errors.Is(err, ErrBadArgument) {
			t.Errorf("%s with an unbuilt C type: err %v, want ErrBadArgument", op, err)
		}
	}
	if err := g.d.MatmulBF16To(g.s, BF16, false, true, 4, 4, 8, 0, 7, 0, 8, 0, 4, 1, 0); !errors.Is(err, ErrBadArgument) {
		t.Errorf("bf16 C, lda < K: err %v, want ErrBadArgument", err)
	}
}
