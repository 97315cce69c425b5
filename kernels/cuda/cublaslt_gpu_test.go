package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// needLt opens cuBLASLt on the test GPU, or skips with the one-line reason
// (no GPU, or no library).
func needLt(t *testing.T) (*gpu, *BLASLt) {
	g := needGPU(t)
	l, err := g.d.OpenBLASLt()
	if err != nil {
		t.Skip(err.Error())
	}
	t.Cleanup(func() { g.ok(l.Close()) })
	t.Logf("%s", l)
	return g, l
}

// TestBLASLtMatmul: cuBLASLt under ftune's row-major contract against the
// float64 reference, every transpose, ragged and padded sizes, NaN-poisoned
// outputs (beta = 0 must not read C; padding must stay untouched), at the
// bf16 GEMM tolerance of the kernels README (1e-4 of Σ|a·b|) and 1e-5 for
// float32 inputs: TF32 (10-bit mantissa) would miss that by two orders, so
// this also proves CUBLAS_COMPUTE_32F never rounds to TF32. Each bf16 case
// also runs ftune's kernel on the same inputs and compares the two.
func TestBLASLtMatmul(t *testing.T) {
	g, l := needLt(t)
	for _, dt := range []DType{BF16, F32} {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for _, c := range gemmCases {
				name := fmt.Sprintf("cublaslt_%s_%v/M%d_N%d_K%d_pad%d_beta%g", transName(tr[0], tr[1]), dt, c.M, c.N, c.K, c.pad, c.beta)
				t.Run(name, func(t *testing.T) { testBLASLt(t, g, l, dt, tr[0], tr[1], c, 0, name) })
			}
		}
	}
	// Operands at odd offsets: the plan is made for their real alignment.
	for _, tr := range [][2]bool{{false, true}, {false, false}, {true, false}} {
		c := gemmCase{67, 45, 39, 1, 1, 0.5}
		name := fmt.Sprintf("cublaslt_%s_bf16/offset", transName(tr[0], tr[1]))
		t.Run(name, func(t *testing.T) { testBLASLt(t, g, l, BF16, tr[0], tr[1], c, 1, name) })
	}
}

func testBLASLt(t *testing.T, g *gpu, l *BLASLt, dt DType, ta, tb bool, c gemmCase, off int, name string) {
	rowsA, rowsB, lda, ldb, ldc := gemmLayout(ta, tb, c)
	a := g.randn(max(rowsA*lda, 1)+off, 1, dt)
	b := g.randn(max(rowsB*ldb, 1)+off, 1, dt)
	c0 := g.randn(max(c.M*ldc, 1)+off, 1, F32)
	pa, pb := g.up(a, dt).Add(off*dt.Size()), g.up(b, dt).Add(off*dt.Size())
	a, b, c0 = a[off:], b[off:], c0[off:]
	run := func() Ptr {
		pc := g.alloc((len(c0) + off) * 4) // NaN-poisoned
		pc = pc.Add(off * 4)
		if c.beta != 0 {
			g.ok(CopyHtoD(g.d, pc, c0))
		}
		return pc
	}
	pc := run()
	err := l.Matmul(g.s, dt, F32, ta, tb, c.M, c.N, c.K, pa, lda, pb, ldb, pc, ldc, c.alpha, c.beta)
	if c.K == 0 && c.M > 0 && c.N > 0 {
		if !errors.Is(err, ErrBadArgument) {
			t.Fatalf("K = 0: want ErrBadArgument (the caller scales C), got %v", err)
		}
		return
	}
	if off > 0 && err != nil && strings.Contains(err.Error(), "no algorithm") {
		// cuBLASLt may have nothing for 2-byte aligned operands: then it
		// must say so (the backend then keeps ftune's kernel for the shape).
		t.Logf("%s: %v", name, err)
		return
	}
	g.ok(err)
	if c.M == 0 || c.N == 0 {
		return
	}
	want, mag := matmulRef(ta, tb, c.M, c.N, c.K, a, lda, b, ldb, c0, ldc, float64(c.alpha), float64(c.beta))
	got := g.down(pc, c.M*ldc, F32)
	gw, ww, mw := gemmWindow(t, got, want, mag, c.M, c.N, ldc, c.beta)
	tl := tol{0, 1e-5}
	if dt == BF16 {
		tl = tol{0, 1e-4}
	}
	compare(t, name, gw, ww, mw, tl)
	if dt != BF16 {
		return
	}
	// Against ftune's kernel on the same inputs: both within tolerance of
	// the reference, so within twice it of each other.
	po := run()
	g.ok(g.d.MatmulBF16(g.s, ta, tb, c.M, c.N, c.K, pa, lda, pb, ldb, po, ldc, c.alpha, c.beta))
	ours, _, _ := gemmWindow(t, g.down(po, c.M*ldc, F32), want, mag, c.M, c.N, ldc, c.beta)
	theirs := make([]float64, len(gw))
	for i, v := range gw {
		theirs[i] = float64(v)
	}
	compare(t, name+" ftune vs cuBLASLt", ours, theirs, mw, tol{0, 2e-4})
}

// TestBLASLtRefusals: bad sizes and types are errors before any call.
func TestBLASLtRefusals(t *testing.T) {
	g, l := needLt(t)
	if err := l.Matmul(g.s, BF16, F32, false, true, 4, 4, 8, 0, 7, 0, 8, 0, 4, 1, 0); !errors.Is(err, ErrBadArgument) {
		t.Errorf("lda 7 < K 8: got %v", err)
	}
	if err := l.Matmul(g.s, F64, F32, false, true, 4, 4, 8, 0, 8, 0, 8, 0, 4, 1, 0); !errors.Is(err, ErrBadArgument) {
		t.Errorf("F64 inputs: got %v", err)
	}
}
