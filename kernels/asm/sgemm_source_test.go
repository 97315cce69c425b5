package asm

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/half"
)

// TestSgemmBF16 runs SgemmBF16 against SgemmBF16Ref on the tile-edge
// shapes, with NaN bit patterns (0x7fc0) around the B window.
func TestSgemmBF16(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(9, 10))
		defer withBlocking(g, 8, 2*g.mr, 2*g.nr)()
		for _, tc := range shapeCases(g, []int{1, 8, 13}) {
			runCaseBF16(t, "bf16", rng, tc)
		}
	})
}

// runCaseBF16 runs SgemmBF16 and SgemmBF16Ref on the same operands, B
// rounded to bfloat16 (NaN guards stay NaN), and compares.
func runCaseBF16(t *testing.T, name string, rng *rand.Rand, tc gemmCase) {
	t.Helper()
	a, bf, c := tc.operands(rng, uniform(rng))
	b16 := make([]uint16, len(bf.data))
	for i, v := range bf.data {
		b16[i] = half.F32ToBF16(v)
		bf.data[i] = half.BF16ToF32(b16[i]) // the exact values the kernels see
	}
	want, got := c.clone(), c.clone()
	SgemmBF16Ref(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b16[bf.off:], bf.ld, tc.beta, want.win(), want.ld)
	SgemmBF16(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, b16[bf.off:], bf.ld, tc.beta, got.win(), got.ld)
	checkGemmResult(t, name, tc, a, bf, c, got, want, false)
}

// negSource is a BSource defined outside the driver, as a quantized weight
// format would be: it serves -B from a float32 B, so SgemmSource with it
// must give the negated product.
type negSource struct{ f32Source }

func (s negSource) PackB(dst []float32, p0, kc, j0, nc, nr int) {
	s.f32Source.PackB(dst, p0, kc, j0, nc, nr)
	for i := range dst[:(nc+nr-1)/nr*nr*kc] {
		dst[i] = -dst[i]
	}
}

func TestSgemmSource(t *testing.T) {
	forEachImpl(t, func(t *testing.T, g *gemmImpl) {
		rng := rand.New(rand.NewPCG(11, 12))
		defer withBlocking(g, 8, 2*g.mr, 2*g.nr)()
		for _, tc := range shapeCases(g, []int{3, 9}) {
			a, b, c := tc.operands(rng, uniform(rng))
			want, got := c.clone(), c.clone()
			GemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, -tc.alpha, a.win(), a.ld, b.win(), b.ld, tc.beta, want.win(), want.ld)
			src := negSource{f32Source{b: b.win(), ldb: b.ld, trans: tc.transB}}
			SgemmSource(tc.transA, tc.m, tc.n, tc.k, tc.alpha, a.win(), a.ld, src, tc.beta, got.win(), got.ld)
			checkGemmResult(t, "source", tc, a, b, c, got, want, false)
		}
	})
}

// TestSgemmBadArgs: sizes that do not fit the slices panic with a message
// naming the function and the operand, before anything is written.
func TestSgemmBadArgs(t *testing.T) {
	buf := make([]float32, 12)
	for _, tc := range []struct {
		name string
		call func()
		want string
	}{
		{"negative", func() { Sgemm(false, false, -1, 2, 2, 1, buf, 2, buf, 2, 0, buf, 2) }, "negative size"},
		{"lda", func() { Sgemm(false, false, 2, 2, 3, 1, buf, 2, buf, 2, 0, buf, 2) }, "leading dimension of A is 2, want >= 3"},
		{"ldb trans", func() { Sgemm(false, true, 2, 2, 3, 1, buf, 3, buf, 2, 0, buf, 2) }, "leading dimension of B is 2, want >= 3"},
		{"short C", func() { Sgemm(false, false, 3, 4, 1, 1, buf, 1, buf, 4, 0, buf[:11], 4) }, "len(C) = 11, want >= 12"},
		{"short B bf16", func() { SgemmBF16(false, false, 2, 2, 3, 1, buf, 3, make([]uint16, 5), 2, 0, buf, 2) }, "SgemmBF16: len(B) = 5, want >= 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s := fmt.Sprint(r); r == nil || !strings.Contains(s, tc.want) {
					t.Errorf("panic = %v, want one containing %q", r, tc.want)
				}
			}()
			tc.call()
		})
	}
}

func ExampleSgemm() {
	// C (2×2) = A (2×3) · B (3×2)
	a := []float32{1, 2, 3, 4, 5, 6}
	b := []float32{1, 0, 0, 1, 1, 1}
	c := make([]float32, 4)
	Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2)
	fmt.Println(c)
	// B given as stored n×k (transB), as a Linear layer's weight is:
	bt := []float32{1, 0, 1, 0, 1, 1}
	Sgemm(false, true, 2, 2, 3, 1, a, 3, bt, 3, 0, c, 2)
	fmt.Println(c)
	// Output:
	// [4 5 10 11]
	// [4 5 10 11]
}
