package asm

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// Special values, accuracy against float64 math, aliasing and dispatch.
// Special inputs are placed at every index of a 37-float row so they go
// through the unrolled body, the single-vector loop and the Go tail of
// every implementation.

var (
	inf  = float32(math.Inf(1))
	nan  = float32(math.NaN())
	ninf = float32(math.Inf(-1))
)

const specialRow = 37

// atEveryIndex calls f with a row of 37 moderate values where index i
// holds v.
func atEveryIndex(v float32, f func(i int, row []float32)) {
	for i := 0; i < specialRow; i++ {
		row := make([]float32, specialRow)
		for j := range row {
			row[j] = float32(j%7) - 3
		}
		row[i] = v
		f(i, row)
	}
}

// TestExpAccuracy bounds the relative error of Exp (and Silu) against
// float64 math on 2^18 evenly spaced and 2^16 random points of [-87, 88].
// Over every 8th float32 of that range (2.8e8 points) the worst measured
// exp error was 8.31e-8 (1.4 units of 2^-24) for the FMA versions and
// 8.08e-8 for Go; the limit leaves a little room above that, below
// Cephes' stated 1.3e-7.
func TestExpAccuracy(t *testing.T) {
	const limit = 9e-8
	n := 1<<18 + 1<<16
	x := make([]float32, n)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range x {
		if i < 1<<18 {
			x[i] = -87 + 175*float32(i)/(1<<18)
		} else {
			x[i] = -87 + 175*r.Float32()
		}
	}
	y := make([]float32, n)
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		Exp(y, x)
		worst, at := 0.0, float32(0)
		for i, v := range x {
			e := math.Exp(float64(v))
			if rel := math.Abs(float64(y[i])-e) / e; rel > worst {
				worst, at = rel, v
			}
		}
		t.Logf("exp: max relative error %.3g at x=%v", worst, at)
		if worst > limit {
			t.Errorf("exp: max relative error %.3g at x=%v, want <= %g", worst, at, limit)
		}
		// silu adds 1+e and a division to exp's error: measured 1.69e-7.
		const siluLimit = 2e-7
		Silu(y, x)
		worst = 0
		for i, v := range x {
			e := float64(v) / (1 + math.Exp(-float64(v)))
			if e == 0 {
				continue
			}
			if rel := math.Abs((float64(y[i]) - e) / e); rel > worst {
				worst, at = rel, v
			}
		}
		t.Logf("silu: max relative error %.3g at x=%v", worst, at)
		if worst > siluLimit {
			t.Errorf("silu: max relative error %.3g at x=%v, want <= %g", worst, at, siluLimit)
		}
	})
}

// TestExpSpecial checks the ends of the range against math.Exp rounded to
// float32: overflow exactly where float32 overflows, subnormals within
// one subnormal step, 0 below, and NaN/Inf.
func TestExpSpecial(t *testing.T) {
	cases := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 88, 88.72, 88.73, 89, 100, 1e30, inf,
		-87, -87.33, -87.34, -95, -103.27, -103.97, -103.98, -104, -150, -1e30, ninf, nan, 1e-40, -1e-40}
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for _, v := range cases {
			want := float32(math.Exp(float64(v)))
			tol := 2*u*float64(want) + 1.5e-45 // 1.4e-45 is the smallest subnormal step
			atEveryIndex(v, func(i int, row []float32) {
				got := make([]float32, len(row))
				Exp(got, row)
				if !sameOrClose(got[i], want, tol) {
					t.Fatalf("exp(%v) at index %d = %v, want %v", v, i, got[i], want)
				}
			})
		}
	})
}

func TestSiluSpecial(t *testing.T) {
	cases := []struct{ x, want float32 }{
		{0, 0}, {inf, inf}, {ninf, nan}, {nan, nan}, {-200, float32(math.Copysign(0, -1))},
		{20, 20 / float32(1+math.Exp(-20))}, {-20, float32(-20 / (1 + math.Exp(20)))},
		{-88, float32(-88 / (1 + math.Exp(88)))}, {1e30, 1e30},
	}
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for _, c := range cases {
			atEveryIndex(c.x, func(i int, row []float32) {
				got := make([]float32, len(row))
				Silu(got, row)
				if !sameOrClose(got[i], c.want, 4*u*math.Abs(float64(c.want))) {
					t.Fatalf("silu(%v) at index %d = %v, want %v", c.x, i, got[i], c.want)
				}
				if c.want == 0 && math.Signbit(float64(got[i])) != math.Signbit(float64(c.want)) {
					t.Fatalf("silu(%v) = %v, want %v (sign of zero)", c.x, got[i], c.want)
				}
			})
		}
	})
}

// TestReductionSpecial: NaN anywhere makes Max, Sum and Dot NaN; Max of
// -Inf entries and of an empty slice is -Inf; Inf propagates through Sum.
func TestReductionSpecial(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		if m := Max(nil); m != ninf {
			t.Fatalf("Max(empty) = %v, want -Inf", m)
		}
		if m := Max([]float32{ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf}); m != ninf {
			t.Fatalf("Max(all -Inf) = %v", m)
		}
		for n := 1; n <= 70; n++ {
			for i := 0; i < n; i++ {
				row := make([]float32, n)
				for j := range row {
					row[j] = -float32(j) - 1
				}
				row[i] = nan
				if m := Max(row); m == m {
					t.Fatalf("Max with NaN at %d of %d = %v, want NaN", i, n, m)
				}
				if s := Sum(row); s == s {
					t.Fatalf("Sum with NaN at %d of %d = %v, want NaN", i, n, s)
				}
				if d := Dot(row, row); d == d {
					t.Fatalf("Dot with NaN at %d of %d = %v, want NaN", i, n, d)
				}
				row[i] = 0.5
				if m := Max(row); m != 0.5 {
					t.Fatalf("Max with 0.5 at %d of %d = %v", i, n, m)
				}
				row[i] = inf
				if s := Sum(row); s != inf {
					t.Fatalf("Sum with +Inf at %d of %d = %v", i, n, s)
				}
			}
		}
	})
}

// softmax64 is the float64 softmax of a float32 row.
func softmax64(x []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Exp(float64(v) - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// TestSoftmaxMasked: -Inf entries (attention masks) give exactly 0 and
// the rest matches float64; rows that are all -Inf, or hold +Inf or NaN,
// are NaN everywhere (PyTorch does the same); LogSoftmax gives -Inf for
// masked entries.
func TestSoftmaxMasked(t *testing.T) {
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for _, n := range []int{1, 5, 16, 37, 100} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i%11) * 1.7
				if i%3 == 1 {
					x[i] = ninf
				}
			}
			want := softmax64(x)
			got := make([]float32, n)
			SoftmaxRow(got, x)
			lgot := make([]float32, n)
			LogSoftmaxRow(lgot, x)
			for i := range x {
				if x[i] == ninf {
					if got[i] != 0 || lgot[i] != ninf {
						t.Fatalf("n=%d masked [%d]: softmax %v (want 0), log %v (want -Inf)", n, i, got[i], lgot[i])
					}
					continue
				}
				if math.Abs(float64(got[i])-want[i]) > 8*u*want[i] {
					t.Fatalf("n=%d [%d] = %v, float64 %v", n, i, got[i], want[i])
				}
				if lw := math.Log(want[i]); math.Abs(float64(lgot[i])-lw) > 8*u*(1+math.Abs(lw)) {
					t.Fatalf("n=%d log [%d] = %v, float64 %v", n, i, lgot[i], lw)
				}
			}
		}
		for _, special := range []float32{ninf, inf, nan} {
			x := []float32{1, 2, special, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
			if special == ninf {
				for i := range x {
					x[i] = ninf
				}
			}
			got := make([]float32, len(x))
			SoftmaxRow(got, x)
			lgot := make([]float32, len(x))
			LogSoftmaxRow(lgot, x)
			for i := range got {
				if got[i] == got[i] || lgot[i] == lgot[i] {
					t.Fatalf("row with %v: [%d] softmax %v log %v, want NaN", special, i, got[i], lgot[i])
				}
			}
		}
	})
}

// TestAliasing runs the kernels whose dst may be an input in place and
// expects bit-identical results to the out-of-place call.
func TestAliasing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := randSlice(r, 1001, 1, vecUniform(-5, 5))
	y := randSlice(r, 1001, 2, vecUniform(-5, 5))
	ops := map[string]func(dst, x, y []float32){
		"Add":           func(d, a, b []float32) { Add(d, a, b) },
		"Mul":           func(d, a, b []float32) { Mul(d, a, b) },
		"SwiGLU":        func(d, a, b []float32) { SwiGLU(d, a, b) },
		"Exp":           func(d, a, _ []float32) { Exp(d, a) },
		"Silu":          func(d, a, _ []float32) { Silu(d, a) },
		"SoftmaxRow":    func(d, a, _ []float32) { SoftmaxRow(d, a) },
		"LogSoftmaxRow": func(d, a, _ []float32) { LogSoftmaxRow(d, a) },
		"RMSNormRow":    func(d, a, b []float32) { RMSNormRow(d, a, b, 1e-6) },
	}
	vecForEachImpl(t, func(t *testing.T, impl Impl) {
		for name, op := range ops {
			want := make([]float32, len(x))
			op(want, x, y)
			inPlace := append([]float32(nil), x...)
			op(inPlace, inPlace, y)
			for i := range want {
				if math.Float32bits(inPlace[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s in place: [%d] = %v, out of place %v", name, i, inPlace[i], want[i])
				}
			}
		}
	})
}

func TestSetImpl(t *testing.T) {
	defer SetImpl(Best())
	if err := SetImpl("vax"); err == nil || !strings.Contains(err.Error(), "vax") {
		t.Fatalf("SetImpl(vax) = %v, want an error naming it", err)
	}
	for _, impl := range Available() {
		if err := SetImpl(impl); err != nil {
			t.Fatal(err)
		}
		if vecImplFor(impl) == &vecGo && impl != ImplGo {
			t.Fatalf("%s has no vector kernels registered", impl)
		}
	}
}

func TestLengthMismatchPanics(t *testing.T) {
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "asm.Dot") || !strings.Contains(msg, "3 != 2") {
			t.Fatalf("panic %q, want one naming asm.Dot and the lengths", msg)
		}
	}()
	Dot(make([]float32, 2), make([]float32, 3))
}
