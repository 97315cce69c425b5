package asm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Every implementation against the Go reference, at sizes around each
// vector width and unroll (4, 8, 16 floats per vector; 4 vectors per
// unrolled step), large sizes, and slices starting 0-3 floats into their
// buffer. Outputs sit inside guard bands of a signalling-NaN pattern that
// must survive bit for bit.

const (
	u        = 1.0 / (1 << 24) // float32 unit roundoff
	guardLen = 8
	guard    = 0x7fa5a5a5 // a NaN no kernel produces (they produce 0x7fc00000 or inputs)
)

var vecSizes = []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000, 4097}

// partialSums is the number of independent float32 partial sums a
// reduction of impl keeps (accumulators x lanes); the error of Dot and Sum
// grows with n/partialSums.
func partialSums(impl Impl) int {
	switch impl {
	case ImplAVX2:
		return 32
	case ImplAVX512:
		return 64
	case ImplNEON:
		return 16
	}
	return 1 << 30 // the reference sums in float64: its error is one final rounding.
}

// sumBound is the first-order error bound of an FMA/add accumulation of n
// terms into p partial sums, combined pairwise (log2 p levels), plus the
// tail done in Go and the final roundings, times sum |term|.
func sumBound(n, p int, absSum float64) float64 {
	levels := math.Log2(float64(min(p, 1<<10)))
	return (float64(n)/float64(p) + levels + 4) * u * absSum
}

// vecForEachImpl runs f once per available implementation, switched with
// SetImpl (the reference runs too: the Go path must meet the same
// tolerances).
func vecForEachImpl(t *testing.T, f func(t *testing.T, impl Impl)) {
	t.Helper()
	defer SetImpl(Best())
	for _, impl := range Available() {
		if err := SetImpl(impl); err != nil {
			t.Fatal(err)
		}
		t.Run(string(impl), func(t *testing.T) { f(t, impl) })
	}
}

// guarded returns an n-float window starting off floats into a buffer
// whose other elements hold the guard pattern, and a check that they still
// do.
func guarded(n, off int) (win []float32, check func(t *testing.T, what string)) {
	buf := make([]float32, guardLen+off+n+guardLen)
	for i := range buf {
		buf[i] = math.Float32frombits(guard)
	}
	lo, hi := guardLen+off, guardLen+off+n
	check = func(t *testing.T, what string) {
		t.Helper()
		for i, v := range buf {
			if (i < lo || i >= hi) && math.Float32bits(v) != guard {
				t.Fatalf("%s: wrote outside its output: element %d of the guard band is %v", what, i-lo, v)
			}
		}
	}
	return buf[lo:hi:hi], check
}

// randSlice returns n values drawn by gen, starting off floats into a
// fresh buffer so the data is unaligned.
func randSlice(r *rand.Rand, n, off int, gen func(*rand.Rand) float32) []float32 {
	buf := make([]float32, off+n)
	for i := range buf {
		buf[i] = gen(r)
	}
	return buf[off:]
}

func vecUniform(lo, hi float32) func(*rand.Rand) float32 {
	return func(r *rand.Rand) float32 { return lo + (hi-lo)*r.Float32() }
}

// sameOrClose reports whether got is within tol of want; two NaNs match.
func sameOrClose(got, want float32, tol float64) bool {
	if want != want || got != got {
		return want != want && got != got
	}
	if math.IsInf(float64(want), 0) {
		return got == want
	}
	return math.Abs(float64(got)-float64(want)) <= tol
}

// vecKernel is one row of the conformance table. run computes with the
// public API (the impl set by SetImpl) when ref is false and with the
// reference when true; out is the output window (for Axpy and Scale it
// holds the input y/x on entry). tol gives the allowed |fast-ref| for an
// output whose reference value is want, and for the returned scalar.
type vecKernel struct {
	name   string
	inputs int
	noOut  bool // returns a scalar and writes nothing
	gen    func(*rand.Rand) float32
	seed   func(out []float32, in [][]float32) // initial contents of out
	run    func(ref bool, out []float32, in [][]float32) float32
	tol    func(impl Impl, in [][]float32, want float32) float64
}

func exact(Impl, [][]float32, float32) float64 { return 0 }

// relTol allows ulps units of roundoff relative to want, and abs below
// the normal range (subnormal results carry absolute, not relative, error).
func relTol(ulps float64) func(Impl, [][]float32, float32) float64 {
	return func(_ Impl, _ [][]float32, want float32) float64 {
		return ulps*u*math.Abs(float64(want)) + 1e-44
	}
}

var vecKernels = []vecKernel{
	{name: "Dot", noOut: true, inputs: 2, gen: vecUniform(-1, 1),
		run: func(ref bool, _ []float32, in [][]float32) float32 {
			if ref {
				return DotRef(in[0], in[1])
			}
			return Dot(in[0], in[1])
		},
		// Products are exact in the FMA; only the additions round.
		tol: func(impl Impl, in [][]float32, _ float32) float64 {
			var abs float64
			for i, v := range in[0] {
				abs += math.Abs(float64(v) * float64(in[1][i]))
			}
			return sumBound(len(in[0]), partialSums(impl), abs) + u*abs
		}},
	{name: "Sum", noOut: true, inputs: 1, gen: vecUniform(-1, 1),
		run: func(ref bool, _ []float32, in [][]float32) float32 {
			if ref {
				return SumRef(in[0])
			}
			return Sum(in[0])
		},
		tol: func(impl Impl, in [][]float32, _ float32) float64 {
			var abs float64
			for _, v := range in[0] {
				abs += math.Abs(float64(v))
			}
			return sumBound(len(in[0]), partialSums(impl), abs) + u*abs
		}},
	{name: "Max", noOut: true, inputs: 1, gen: vecUniform(-100, 100), tol: exact,
		run: func(ref bool, _ []float32, in [][]float32) float32 {
			if ref {
				return MaxRef(in[0])
			}
			return Max(in[0])
		}},
	// FMA rounds y+alpha*x once, the reference rounds alpha*x first: they
	// differ by at most an ulp of alpha*x plus an ulp of the result.
	{name: "Axpy", inputs: 2, gen: vecUniform(-2, 2),
		seed: func(out []float32, in [][]float32) { copy(out, in[1]) },
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				AxpyRef(0.7, in[0], out)
			} else {
				Axpy(0.7, in[0], out)
			}
			return 0
		},
		tol: func(_ Impl, in [][]float32, want float32) float64 {
			return 2*u*(1.4+math.Abs(float64(want))) + 1e-44
		}},
	{name: "Scale", inputs: 1, gen: vecUniform(-10, 10), tol: exact,
		seed: func(out []float32, in [][]float32) { copy(out, in[0]) },
		run: func(ref bool, out []float32, _ [][]float32) float32 {
			if ref {
				ScaleRef(-1.3, out)
			} else {
				Scale(-1.3, out)
			}
			return 0
		}},
	{name: "Add", inputs: 2, gen: vecUniform(-10, 10), tol: exact,
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				AddRef(out, in[0], in[1])
			} else {
				Add(out, in[0], in[1])
			}
			return 0
		}},
	{name: "Mul", inputs: 2, gen: vecUniform(-10, 10), tol: exact,
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				MulRef(out, in[0], in[1])
			} else {
				Mul(out, in[0], in[1])
			}
			return 0
		}},
	// Both sides are within ~1.3 ulp of exp (TestExpAccuracy); the FMA
	// and non-FMA polynomial evaluations may land on opposite sides.
	{name: "Exp", inputs: 1, gen: vecUniform(-105, 90), tol: relTol(3),
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				ExpRef(out, in[0])
			} else {
				Exp(out, in[0])
			}
			return 0
		}},
	// exp's 3 ulp between the two sides, +1 for 1+e and 1 for the
	// division, each relative to silu and at most doubled by the
	// condition number of x/(1+e^-x) in e^-x (< 1 plus rounding).
	{name: "Silu", inputs: 1, gen: vecUniform(-30, 30), tol: relTol(6),
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				SiluRef(out, in[0])
			} else {
				Silu(out, in[0])
			}
			return 0
		}},
	{name: "SwiGLU", inputs: 2, gen: vecUniform(-30, 30), tol: relTol(7),
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				SwiGLURef(out, in[0], in[1])
			} else {
				SwiGLU(out, in[0], in[1])
			}
			return 0
		}},
	// ExpShiftSum: each term within Exp's 3 ulp plus one for rounding
	// x-shift; the returned sum adds the positive-term summation bound
	// relative to itself. One bound, relative to the value, covers both
	// the terms and the sum.
	{name: "ExpShiftSum", inputs: 1, gen: vecUniform(-20, 20),
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				return expShiftSumRef(out, in[0], 4.5)
			}
			return ExpShiftSum(out, in[0], 4.5)
		},
		tol: func(impl Impl, in [][]float32, want float32) float64 {
			rel := 4*u + sumBound(len(in[0]), partialSums(impl), 1)
			return 2*rel*math.Abs(float64(want)) + 1e-44
		}},
	{name: "SubShift", inputs: 1, gen: vecUniform(-10, 10), tol: exact,
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				subShiftRef(out, in[0], 0.3, -1.7)
			} else {
				SubShift(out, in[0], 0.3, -1.7)
			}
			return 0
		}},
	{name: "ScaleMul", inputs: 2, gen: vecUniform(-10, 10), tol: exact,
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				scaleMulRef(out, in[0], in[1], 0.37)
			} else {
				ScaleMul(out, in[0], in[1], 0.37)
			}
			return 0
		}},
	// Softmax: 3 ulp of exp, the sum's relative error (positive terms,
	// so sumBound relative to the sum itself) and 2 roundings for 1/s and
	// the product.
	{name: "SoftmaxRow", inputs: 1, gen: vecUniform(-20, 20),
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				SoftmaxRowRef(out, in[0])
			} else {
				SoftmaxRow(out, in[0])
			}
			return 0
		},
		tol: func(impl Impl, in [][]float32, want float32) float64 {
			rel := (3+2)*u + sumBound(len(in[0]), partialSums(impl), 1)
			return 2*rel*math.Abs(float64(want)) + 1e-44
		}},
	// LogSoftmax: x-max rounds (u|x-max|), log(s) carries the sum's
	// relative error as an absolute one, the last subtraction rounds.
	{name: "LogSoftmaxRow", inputs: 1, gen: vecUniform(-20, 20),
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				LogSoftmaxRowRef(out, in[0])
			} else {
				LogSoftmaxRow(out, in[0])
			}
			return 0
		},
		tol: func(impl Impl, in [][]float32, want float32) float64 {
			s := 3*u + sumBound(len(in[0]), partialSums(impl), 1)
			return 2*(s+2*u*(40+math.Abs(float64(want)))) + 1e-44
		}},
	// RMSNorm: the sum of squares' relative error halves through the
	// square root; mean, +eps, sqrt, 1/x and two products round once each.
	{name: "RMSNormRow", inputs: 2, gen: vecUniform(-3, 3),
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				return RMSNormRowRef(out, in[0], in[1], 1e-5)
			}
			return RMSNormRow(out, in[0], in[1], 1e-5)
		},
		tol: func(impl Impl, in [][]float32, want float32) float64 {
			rel := 0.5*sumBound(len(in[0]), partialSums(impl), 1) + 6*u
			return 2*rel*math.Abs(float64(want)) + 1e-44
		}},
	{name: "RMSNormRow/nil-weight", inputs: 1, gen: vecUniform(-3, 3),
		run: func(ref bool, out []float32, in [][]float32) float32 {
			if ref {
				return RMSNormRowRef(out, in[0], nil, 1e-5)
			}
			return RMSNormRow(out, in[0], nil, 1e-5)
		},
		tol: func(impl Impl, in [][]float32, want float32) float64 {
			rel := 0.5*sumBound(len(in[0]), partialSums(impl), 1) + 6*u
			return 2*rel*math.Abs(float64(want)) + 1e-44
		}},
}

func TestVecKernels(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for _, k := range vecKernels {
			t.Run(k.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(1, uint64(len(k.name))))
				worst := 0.0 // largest |fast-ref|/tol seen, logged to show the margin
				note := func(got, want float32, tol float64) {
					if d := math.Abs(float64(got) - float64(want)); tol > 0 && d == d && !math.IsInf(d, 0) {
						worst = max(worst, d/tol)
					}
				}
				for _, n := range vecSizes {
					for off := 0; off < 4; off++ {
						in := make([][]float32, k.inputs)
						for i := range in {
							in[i] = randSlice(r, n, off, k.gen)
						}
						want := make([]float32, n)
						got, check := guarded(n, (off+1)%4)
						if k.noOut {
							got, check = guarded(0, off)
						}
						if k.seed != nil {
							k.seed(want, in)
							k.seed(got, in)
						}
						wantRet := k.run(true, want, in)
						gotRet := k.run(false, got, in)
						what := fmt.Sprintf("%s n=%d off=%d", k.name, n, off)
						check(t, what)
						tol := k.tol(impl, in, wantRet)
						note(gotRet, wantRet, tol)
						if !sameOrClose(gotRet, wantRet, tol) {
							t.Fatalf("%s: returned %v, reference %v (diff %g > tol %g)", what, gotRet, wantRet, gotRet-wantRet, tol)
						}
						for i := range want {
							if k.noOut {
								break
							}
							tol := k.tol(impl, in, want[i])
							note(got[i], want[i], tol)
							if !sameOrClose(got[i], want[i], tol) {
								t.Fatalf("%s: [%d] = %v, reference %v (diff %g > tol %g)", what, i, got[i], want[i], got[i]-want[i], tol)
							}
						}
					}
				}
				t.Logf("%s: worst |%s-ref| = %.2f of the tolerance", k.name, impl, worst)
			})
		}
	})
}

// TestSwiGLUBackward checks both outputs against the reference at every
// size class and alignment, with guard bands. Tolerance: σ carries exp's 3
// ulp plus the add and the division (5u relative); du adds 2 products, dg
// 4 products and the 1+g(1−σ) term, whose rounding is relative to
// |g|·(1−σ)+1; 2× margin on the relative bound of each term.
func TestSwiGLUBackward(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		r := rand.New(rand.NewPCG(3, 9))
		gen := vecUniform(-12, 12)
		worst := 0.0
		for _, n := range vecSizes {
			for off := 0; off < 4; off++ {
				dy, g, up := randSlice(r, n, off, gen), randSlice(r, n, (off+1)%4, gen), randSlice(r, n, (off+2)%4, gen)
				wdg, wdu := make([]float32, n), make([]float32, n)
				SwiGLUBackwardRef(wdg, wdu, dy, g, up)
				dg, checkG := guarded(n, off)
				du, checkU := guarded(n, (off+3)%4)
				SwiGLUBackward(dg, du, dy, g, up)
				what := fmt.Sprintf("n=%d off=%d", n, off)
				checkG(t, what)
				checkU(t, what)
				for i := range wdg {
					s := 1 / (1 + math.Exp(-float64(g[i])))
					tu := 2 * 7 * u * math.Abs(float64(dy[i])*float64(g[i])*s)
					tg := 2 * 10 * u * math.Abs(float64(dy[i])*float64(up[i])*s) * (1 + math.Abs(float64(g[i]))*(1-s))
					for _, c := range []struct {
						name      string
						got, want float32
						tol       float64
					}{{"du", du[i], wdu[i], tu + 1e-44}, {"dg", dg[i], wdg[i], tg + 1e-44}} {
						d := math.Abs(float64(c.got) - float64(c.want))
						if !(d <= c.tol) {
							t.Fatalf("%s %s[%d] = %v, reference %v (diff %g > tol %g)", what, c.name, i, c.got, c.want, d, c.tol)
						}
						worst = max(worst, d/c.tol)
					}
				}
			}
		}
		t.Logf("SwiGLUBackward: worst |%s-ref| = %.2f of the tolerance", impl, worst)
	})
}
