package asm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The tanh-based kernels (Gemma's soft-cap and GeGLU) of every
// implementation against their Go references, at every size class and
// alignment of vecSizes with guard bands, then special inputs at every
// index of a row (body, single vector and tail) and accuracy against
// float64 math.

// softcapTol is Softcap's allowed |fast−ref|. Below |x/c| = 0.3 both sides
// evaluate the same Taylor polynomial, the assembly with FMA: a few
// roundings of a value near 1, 4 ulps of the result. Above, exp's 3 ulps
// between the sides (relTol(3) in vecKernels) and one rounding each of
// 1 + e and of the quotient 2c/(1 + e) ≤ 2c differ by at most 5 ulps of a
// value ≤ 2c, i.e. 10·2⁻²⁴·c, and c − q one more ulp of c: 12·2⁻²⁴·c. That
// is absolute (the formula's cancellation is why the Taylor branch exists).
func softcapTol(x, c, want float32) float64 {
	if u := x * (1 / c); u > -softcapSmall && u < softcapSmall {
		return 4*u32(want) + 1e-44
	}
	return 12 * u * float64(c)
}

func u32(v float32) float64 { return u * math.Abs(float64(v)) }

func TestSoftcapKernels(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for _, c := range []float32{30, 50, 1} {
			r := rand.New(rand.NewPCG(11, uint64(c)))
			worst := 0.0
			for _, n := range vecSizes {
				for off := 0; off < 4; off++ {
					// Scores of both branches: |x/c| up to 4, a third below 0.3.
					x := randSlice(r, n, off, func(r *rand.Rand) float32 {
						if r.IntN(3) == 0 {
							return c * (0.6*r.Float32() - 0.3)
						}
						return c * (8*r.Float32() - 4)
					})
					want := make([]float32, n)
					SoftcapRef(want, x, c)
					got, check := guarded(n, (off+1)%4)
					Softcap(got, x, c)
					what := fmt.Sprintf("c=%v n=%d off=%d", c, n, off)
					check(t, what)
					for i := range want {
						tol := softcapTol(x[i], c, want[i])
						d := math.Abs(float64(got[i]) - float64(want[i]))
						if !(d <= tol) {
							t.Fatalf("%s: softcap(%v)[%d] = %v, reference %v (diff %g > tol %g)", what, x[i], i, got[i], want[i], d, tol)
						}
						worst = max(worst, d/tol)
					}
					inPlace := append([]float32(nil), x...)
					Softcap(inPlace, inPlace, c)
					for i := range got {
						if math.Float32bits(inPlace[i]) != math.Float32bits(got[i]) {
							t.Fatalf("%s in place: [%d] = %v, out of place %v", what, i, inPlace[i], got[i])
						}
					}
				}
			}
			t.Logf("Softcap c=%v: worst |%s-ref| = %.2f of the tolerance", c, impl, worst)
		}
	})
}

// SoftcapBackward is bit-identical to its reference: the same three
// products and one subtraction, no FMA. Masked scores (−Inf) give 0.
func TestSoftcapBackwardKernels(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		const c = 50
		r := rand.New(rand.NewPCG(12, 1))
		for _, n := range vecSizes {
			for off := 0; off < 4; off++ {
				y := randSlice(r, n, off, func(r *rand.Rand) float32 {
					if r.IntN(5) == 0 {
						return ninf
					}
					return c * (2*r.Float32() - 1)
				})
				dy := randSlice(r, n, (off+2)%4, vecUniform(-3, 3))
				want := make([]float32, n)
				SoftcapBackwardRef(want, dy, y, c)
				got, check := guarded(n, (off+1)%4)
				SoftcapBackward(got, dy, y, c)
				what := fmt.Sprintf("n=%d off=%d", n, off)
				check(t, what)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s: [%d] = %v, reference %v (y=%v dy=%v)", what, i, got[i], want[i], y[i], dy[i])
					}
					if y[i] == ninf && got[i] != 0 {
						t.Fatalf("%s: masked score [%d] has gradient %v", what, i, got[i])
					}
				}
				inPlace := append([]float32(nil), dy...)
				SoftcapBackward(inPlace, inPlace, y, c)
				for i := range got {
					if math.Float32bits(inPlace[i]) != math.Float32bits(got[i]) {
						t.Fatalf("%s in place: [%d] = %v, out of place %v", what, i, inPlace[i], got[i])
					}
				}
			}
		}
	})
}

// GeGLU: exp's 3 ulps, then 1 + e, the division and two products, each
// rounding once on either side: 7 ulps of the result, as SwiGLU. The
// backward's du is that plus one product; dg adds the derivative's
// 2g·s·(1−s)·v' term, whose roundings (4 products, 1 − s, the sum with s)
// are relative to |s| + |2g·s·(1−s)·v'|, with 2× margin as
// TestSwiGLUBackward.
func TestGeGLUKernels(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		r := rand.New(rand.NewPCG(13, 2))
		gen := vecUniform(-12, 12)
		worstF, worstB := 0.0, 0.0
		for _, n := range vecSizes {
			for off := 0; off < 4; off++ {
				g, up, dy := randSlice(r, n, off, gen), randSlice(r, n, (off+1)%4, gen), randSlice(r, n, (off+2)%4, gen)
				want := make([]float32, n)
				GeGLURef(want, g, up)
				got, check := guarded(n, (off+3)%4)
				GeGLU(got, g, up)
				what := fmt.Sprintf("n=%d off=%d", n, off)
				check(t, what)
				for i := range want {
					tol := 7*u32(want[i]) + 1e-44
					d := math.Abs(float64(got[i]) - float64(want[i]))
					if !(d <= tol) {
						t.Fatalf("%s: GeGLU [%d] (g=%v) = %v, reference %v (diff %g > tol %g)", what, i, g[i], got[i], want[i], d, tol)
					}
					worstF = max(worstF, d/tol)
				}
				inPlace := append([]float32(nil), g...)
				GeGLU(inPlace, inPlace, up)
				for i := range got {
					if math.Float32bits(inPlace[i]) != math.Float32bits(got[i]) {
						t.Fatalf("%s in place: [%d] = %v, out of place %v", what, i, inPlace[i], got[i])
					}
				}
				wdg, wdu := make([]float32, n), make([]float32, n)
				GeGLUBackwardRef(wdg, wdu, dy, g, up)
				dg, checkG := guarded(n, off)
				du, checkU := guarded(n, (off+3)%4)
				GeGLUBackward(dg, du, dy, g, up)
				checkG(t, what)
				checkU(t, what)
				for i := range wdg {
					x := float64(g[i])
					s := 1 / (1 + math.Exp(-2*float64(geluC)*(x+float64(geluA)*x*x*x)))
					term := math.Abs(2 * x * s * (1 - s) * float64(geluC) * (1 + 3*float64(geluA)*x*x))
					tu := 2*8*u*math.Abs(float64(dy[i])*x*s) + 1e-44
					tg := 2*12*u*math.Abs(float64(dy[i])*float64(up[i]))*(s+term) + 1e-44
					for _, e := range []struct {
						name      string
						got, want float32
						tol       float64
					}{{"du", du[i], wdu[i], tu}, {"dg", dg[i], wdg[i], tg}} {
						d := math.Abs(float64(e.got) - float64(e.want))
						if !(d <= e.tol) {
							t.Fatalf("%s %s[%d] (g=%v) = %v, reference %v (diff %g > tol %g)", what, e.name, i, g[i], e.got, e.want, d, e.tol)
						}
						worstB = max(worstB, d/e.tol)
					}
				}
			}
		}
		t.Logf("GeGLU: worst |%s-ref| = %.2f of the tolerance, backward %.2f", impl, worstF, worstB)
	})
}

// Special inputs at every index of a row: the soft-cap saturates to
// exactly ±c (huge scores, ±Inf) and keeps NaN; GeGLU and its gradients
// stay finite for huge finite gates, and dg for infinite ones.
func TestTanhKernelsSpecial(t *testing.T) {
	const c = 30
	big := float32(math.MaxFloat32)
	softcapCases := []struct{ x, want float32 }{
		{0, 0}, {inf, c}, {ninf, -c}, {nan, nan}, {1e30, c}, {-1e30, -c}, {big, c}, {-big, -c},
		{20 * c, c}, {-20 * c, -c}, {1e-30, 1e-30}, {-1e-40, -1e-40},
	}
	gelu := func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(float64(geluC)*(x+float64(geluA)*x*x*x))) }
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for _, sc := range softcapCases {
			atEveryIndex(sc.x, func(i int, row []float32) {
				got := make([]float32, len(row))
				Softcap(got, row, c)
				if !sameOrClose(got[i], sc.want, 2*u32(sc.want)) {
					t.Fatalf("softcap(%v) at index %d = %v, want %v", sc.x, i, got[i], sc.want)
				}
			})
		}
		for _, x := range []float32{0, 1e-30, 1, -2, 20, -20, 100, -100, 1e10, -1e10, 1e30, -1e30, big, -big, inf, ninf, nan} {
			want := float32(gelu(float64(x)))
			switch {
			case x == ninf || x != x:
				want = nan // PyTorch's formula: −Inf·0
			case x <= -20:
				want = float32(math.Copysign(0, -1))
			case x >= 20:
				want = x
			}
			atEveryIndex(x, func(i int, row []float32) {
				ones := make([]float32, len(row))
				for j := range ones {
					ones[j] = 1
				}
				got := make([]float32, len(row))
				GeGLU(got, row, ones)
				if !sameOrClose(got[i], want, 8*u32(want)+1e-44) {
					t.Fatalf("gelu(%v) at index %d = %v, want %v", x, i, got[i], want)
				}
				dg, du := make([]float32, len(row)), make([]float32, len(row))
				GeGLUBackward(dg, du, ones, row, ones)
				if x == x && (math.IsNaN(float64(dg[i])) || math.IsInf(float64(dg[i]), 0)) {
					t.Fatalf("gelu'(%v) at index %d = %v, want a finite gradient", x, i, dg[i])
				}
				var wantDg float32 // 0 far left, 1 far right
				if x >= 20 {
					wantDg = 1
				}
				if (x >= 20 || x <= -20) && dg[i] != wantDg {
					t.Fatalf("gelu'(%v) at index %d = %v, want %v", x, i, dg[i], wantDg)
				}
				if !sameOrClose(du[i], want, 8*u32(want)+1e-44) {
					t.Fatalf("du at gate %v, index %d = %v, want gelu = %v", x, i, du[i], want)
				}
			})
		}
	})
}

// Accuracy against float64 math on a grid: the soft-cap within 2.5e-7·c
// absolute above |x/c| = 0.3 (measured 2.06e-7 at c = 30: the formula's
// error is absolute there) and 3 ulps relative below; gelu_tanh(g) within
// (4 + 4·|a|) ulps relative, a = 2·√(2/π)·(g + 0.044715·g³) being exp's
// argument: its four roundings (g², two products, the sum and the scale;
// no cancellation, both terms share g's sign) are amplified by |a|, the
// condition number of e^a, plus 1e-37 absolute (exp's subnormal steps
// far left, where gelu underflows).
func TestTanhKernelsAccuracy(t *testing.T) {
	const c = 30
	n := 1 << 16
	x := make([]float32, n)
	for i := range x {
		x[i] = -6*c + 12*c*float32(i)/float32(n)
	}
	y := make([]float32, n)
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		Softcap(y, x, c)
		worstAbs, worstRel := 0.0, 0.0
		for i, v := range x {
			want := c * math.Tanh(float64(v)/c)
			d := math.Abs(float64(y[i]) - want)
			if math.Abs(float64(v)/c) < float64(softcapSmall) {
				worstRel = max(worstRel, d/math.Max(math.Abs(want), 1e-38))
			} else {
				worstAbs = max(worstAbs, d/c)
			}
		}
		t.Logf("softcap: max error %.3g·c (|x/c| ≥ 0.3), %.3g relative below", worstAbs, worstRel)
		if worstAbs > 2.5e-7 || worstRel > 3*u {
			t.Errorf("softcap: max error %.3g·c and %.3g relative, want ≤ 2.5e-7 and %.3g", worstAbs, worstRel, 3*u)
		}
		g := x[: n/2 : n/2] // -180..0: and a positive half below
		for i := range g {
			g[i] = -12 + 24*float32(i)/float32(len(g))
		}
		GeGLU(y[:len(g)], g, ones[:len(g)])
		worst := 0.0
		for i, v := range g {
			xv := float64(v)
			// x·σ(2z), the same as 0.5·x·(1 + tanh(z)) without its
			// cancellation in float64 far left.
			want := xv / (1 + math.Exp(-2*math.Sqrt(2/math.Pi)*(xv+0.044715*xv*xv*xv)))
			a := 2 * math.Sqrt(2/math.Pi) * (xv + 0.044715*xv*xv*xv)
			if d := math.Abs(float64(y[i])-want) - 1e-37; d > 0 {
				worst = max(worst, d/math.Abs(want)/((4+4*math.Abs(a))*u))
			}
		}
		t.Logf("gelu_tanh: max relative error %.2f of the bound", worst)
		if worst > 1 {
			t.Errorf("gelu_tanh: max relative error %.2f of the bound (4 + 4|a|)·2⁻²⁴", worst)
		}
		for i := range x { // restore the soft-cap grid for the next implementation
			x[i] = -6*c + 12*c*float32(i)/float32(n)
		}
	})
}

// TestTailsDoNotAllocate: the padded tails of the transcendental kernels
// come from a pool; an allocation per call (one per ragged attention row)
// cost more than the kernels.
func TestTailsDoNotAllocate(t *testing.T) {
	x, y, z := make([]float32, 21), make([]float32, 21), make([]float32, 21)
	kernels := map[string]func(){
		"ExpShiftSum":     func() { ExpShiftSum(x, x, 1) },
		"LogSoftmaxRow":   func() { LogSoftmaxRow(x, x) },
		"Silu":            func() { Silu(x, x) },
		"SwiGLU":          func() { SwiGLU(x, x, y) },
		"SwiGLUBackward":  func() { SwiGLUBackward(x, y, z, x, y) },
		"Softcap":         func() { Softcap(x, x, 30) },
		"SoftcapBackward": func() { SoftcapBackward(x, x, y, 30) },
		"GeGLU":           func() { GeGLU(x, x, y) },
		"GeGLUBackward":   func() { GeGLUBackward(x, y, z, x, y) },
	}
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for name, f := range kernels {
			if n := testing.AllocsPerRun(50, f); n != 0 {
				t.Errorf("%s on 21 floats: %v allocations a call, want 0", name, n)
			}
		}
	})
}
