package cuda

import (
	"fmt"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// nf4DQ is a random double-quantized NF4 weight on the host: 8-bit scale
// codes, nested float32 scales, a random 256-entry code book (random, not
// bitsandbytes' sorted dynamic map, so an indexing error cannot hide behind
// neighbouring entries that are close) and an offset. scale returns block
// b's float32 scale as the kernels decode it: product, then sum, each
// rounded to float32 (the explicit conversions forbid Go from fusing them).
type nf4DQ struct {
	packed, qabsmax []uint8
	nested, code    []float32
	nbs             int
	offset          float32
}

func newNF4DQ(g *gpu, n, blocksize, nbs int) *nf4DQ {
	blocks := max((n+blocksize-1)/blocksize, 1)
	q := &nf4DQ{packed: make([]uint8, max((n+1)/2, 1)), qabsmax: make([]uint8, blocks),
		nested: make([]float32, (blocks+nbs-1)/nbs), code: make([]float32, 256), nbs: nbs,
		offset: float32(g.rng.Float64()*0.5 + 0.25)}
	for i := range q.packed {
		q.packed[i] = uint8(g.rng.IntN(256))
	}
	for i := range q.qabsmax {
		q.qabsmax[i] = uint8(g.rng.IntN(256))
	}
	for i := range q.nested {
		q.nested[i] = float32(g.rng.Float64()*0.5 + 0.01)
	}
	for i := range q.code {
		q.code[i] = float32(g.rng.Float64()*2 - 1)
	}
	return q
}

func (q *nf4DQ) scale(b int) float32 {
	p := float32(q.code[q.qabsmax[b]] * q.nested[b/q.nbs])
	return float32(p + q.offset)
}

// value is element i dequantized in float32 (code·scale, one rounding).
func (q *nf4DQ) value(i, blocksize int) float32 {
	c := q.packed[i/2] >> 4
	if i%2 == 1 {
		c = q.packed[i/2] & 15
	}
	return float32(nf4Code[c]) * q.scale(i/blocksize)
}

// upload copies q to the device.
func (q *nf4DQ) upload(g *gpu) (packed Ptr, nested NF4Nested) {
	packed = g.alloc(len(q.packed))
	g.ok(CopyHtoD(g.d, packed, q.packed))
	qa := g.alloc(len(q.qabsmax))
	g.ok(CopyHtoD(g.d, qa, q.qabsmax))
	return packed, NF4Nested{QAbsmax: qa, NestedAbsmax: g.up(q.nested, F32), NestedCode: g.up(q.code, F32),
		NestedBlockSize: q.nbs, Offset: q.offset}
}

// TestNF4DQDequant: exact for both output types, since the reference
// decodes the scale and rounds (float32 product, float32 sum, bf16) as the
// kernel does. Nested blocks of 256 (bitsandbytes') and of 3 (many nested
// blocks even at small n); n ragged against the 8-element groups.
func TestNF4DQDequant(t *testing.T) {
	g := needGPU(t)
	for _, dt := range dtypes {
		for _, n := range []int{1, 63, 64, 65, 4097, 40001} {
			for _, nbs := range []int{256, 3} {
				const bs = 64
				q := newNF4DQ(g, n, bs, nbs)
				pp, nq := q.upload(g)
				out := g.alloc(n * dt.Size())
				g.ok(g.d.NF4DQDequant(g.s, dt, out, pp, int64(n), bs, nq))
				want := make([]float64, n)
				for i := range want {
					v := q.value(i, bs)
					if dt == BF16 {
						v = half.BF16ToF32(half.F32ToBF16(v))
					}
					want[i] = float64(v)
				}
				compare(t, fmt.Sprintf("nf4dq_dequant_fwd_%v/n%d_nbs%d", dt, n, nbs), g.down(out, n, dt), want, nil, tol{})
			}
		}
	}
}

// Both orientations on a subset of the NF4 GEMM sizes: 0, 1, ragged around
// the tile, row lengths a multiple of 64, of 8 only, and odd (element path),
// M of 1 and a tall M, padded lda/ldc, beta = 1.
var nf4DQGemmCases = []gemmCase{
	{0, 5, 7, 0, 1, 0}, {5, 7, 0, 0, 1, 0}, {1, 1, 1, 0, 1, 0}, {1, 200, 72, 0, 1, 0},
	{127, 129, 31, 0, 1, 0}, {129, 127, 65, 0, 1, 0}, {33, 131, 201, 5, 1, 0},
	{64, 72, 136, 8, 0.5, 1}, {517, 40, 64, 0, 1, 0},
}

func TestMatmulNF4DQ(t *testing.T) {
	g := needGPU(t)
	for _, transB := range []bool{true, false} {
		for _, c := range nf4DQGemmCases {
			for _, bs := range []int{64, 24} {
				for _, nbs := range []int{256, 3} {
					name := fmt.Sprintf("matmul_%s_nf4dq_fwd_bf16/M%d_N%d_K%d_pad%d_beta%g_bs%d_nbs%d",
						transName(false, transB), c.M, c.N, c.K, c.pad, c.beta, bs, nbs)
					t.Run(name, func(t *testing.T) { testMatmulNF4DQ(t, g, transB, c, bs, nbs, name) })
				}
			}
		}
	}
}

func testMatmulNF4DQ(t *testing.T, g *gpu, transB bool, c gemmCase, bs, nbs int, name string) {
	lda, ldc := max(c.K+c.pad, 1), max(c.N+c.pad, 1)
	a := g.randn(max(c.M*lda, 1), 1, BF16)
	c0 := g.randn(max(c.M*ldc, 1), 1, F32)
	rows, cols := c.K, c.N // W's shape as stored
	if transB {
		rows, cols = c.N, c.K
	}
	q := newNF4DQ(g, rows*cols, bs, nbs)
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = half.BF16ToF32(half.F32ToBF16(q.value(i, bs)))
	}
	pa := g.up(a, BF16)
	pp, nq := q.upload(g)
	pc := g.alloc(len(c0) * 4) // NaN-poisoned
	if c.beta != 0 {
		g.ok(CopyHtoD(g.d, pc, c0))
	}
	g.ok(g.d.MatmulNF4DQBF16(g.s, transB, c.M, c.N, c.K, pa, lda, pp, bs, nq, pc, ldc, c.alpha, c.beta))
	if c.M == 0 || c.N == 0 {
		return
	}
	want, mag := matmulRef(false, transB, c.M, c.N, c.K, a, lda, w, max(cols, 1), c0, ldc, float64(c.alpha), float64(c.beta))
	gw, ww, mw := gemmWindow(t, g.down(pc, c.M*ldc, F32), want, mag, c.M, c.N, ldc, c.beta)
	// As for the NF4 GEMM: the reference holds the loader's bf16 tiles bit
	// for bit, so only float32 accumulation remains.
	compare(t, name, gw, ww, mw, tol{0, 1e-4})
}

func TestMatmulNF4DQBadArgs(t *testing.T) {
	g := needGPU(t)
	if err := g.d.MatmulNF4DQBF16(g.s, true, 4, 4, 8, 0, 8, 0, 64, NF4Nested{}, 0, 4, 1, 0); err == nil {
		t.Error("nested blocksize 0 accepted")
	}
	if err := g.d.MatmulNF4DQBF16(g.s, false, 4, 4, 8, 0, 7, 0, 64, NF4Nested{NestedBlockSize: 256}, 0, 4, 1, 0); err == nil {
		t.Error("lda < K accepted")
	}
	if err := g.d.NF4DQDequant(g.s, F32, 0, 0, 8, 64, NF4Nested{}); err == nil {
		t.Error("dequant: nested blocksize 0 accepted")
	}
}
