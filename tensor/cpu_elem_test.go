package tensor

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// sameBits reports whether two float32 slices hold the same values bit for
// bit, any NaN matching any NaN (a NaN's payload may depend on operand
// order).
func sameBits(a, b []float32) (int, bool) {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i, false
		}
	}
	return -1, len(a) == len(b)
}

// specialFloats fills n values, mostly normal, some NaN, ±Inf, ±0.
func specialFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		switch r.IntN(40) {
		case 0:
			v[i] = float32(math.NaN())
		case 1:
			v[i] = float32(math.Inf(1 - 2*r.IntN(2)))
		case 2:
			v[i] = float32(math.Copysign(0, float64(1-2*r.IntN(2))))
		default:
			v[i] = float32(r.NormFloat64() * 3)
		}
	}
	return v
}

// The row-broadcast fast path of Binary (a bias or a per-feature factor
// added to or multiplying every row) against binary's strided walk, the
// reference: the same values bit for bit, with the vector on either side,
// ragged row widths, specials, and on 1 and 2 threads (the last shape is
// large enough to be split between them).
func TestRowBroadcastMatchesWalk(t *testing.T) {
	c := CPUDefault()
	r := rand.New(rand.NewPCG(7, 8))
	for _, procs := range []int{1, 2} {
		prev := runtime.GOMAXPROCS(procs)
		for _, shape := range []Shape{{5, 1}, {3, 17}, {64, 100}, {2, 7, 33}, {300, 64}, {600, 97}} {
			cols := shape[len(shape)-1]
			for _, op := range []BinaryOp{OpAdd, OpMul} {
				for _, vecFirst := range []bool{false, true} {
					x := FromHost(c, F32, specialFloats(r, shape.Numel()), shape...)
					v := FromHost(c, F32, specialFloats(r, cols), cols).Expand(shape)
					a, b := x, v
					if vecFirst {
						a, b = v, x
					}
					got, want := New(c, F32, shape...), New(c, F32, shape...)
					if !binaryF32Fast(op, got, a, b) {
						t.Fatalf("%v %v: the fast path declined a row broadcast", shape, op)
					}
					binary[float32](op, want, a, b)
					if i, ok := sameBits(got.F32(), want.F32()); !ok {
						t.Fatalf("procs %d %v op %v vector first %v: element %d is %v, the walk's %v", procs, shape, op, vecFirst, i, got.F32()[i], want.F32()[i])
					}
				}
			}
		}
		runtime.GOMAXPROCS(prev)
	}
	// Not a row broadcast: a column vector [rows, 1] expanded.
	x := FromHost(c, F32, specialFloats(r, 12), 4, 3)
	col := FromHost(c, F32, specialFloats(r, 4), 4, 1).Expand(Shape{4, 3})
	if binaryF32Fast(OpMul, New(c, F32, 4, 3), x, col) {
		t.Fatal("the fast path took a column broadcast")
	}
}

// The leading-axis fast path of Reduce (a broadcast input's gradient
// summed over rows) against reduce's walk, the reference: sums and means
// bit for bit over every axis but the last of 2- and 3-axis tensors.
func TestReduceLeadingMatchesWalk(t *testing.T) {
	c := CPUDefault()
	r := rand.New(rand.NewPCG(9, 10))
	for _, procs := range []int{1, 2} {
		prev := runtime.GOMAXPROCS(procs)
		for _, shape := range []Shape{{7, 5}, {300, 64}, {3, 9, 17}, {2, 1, 40}, {64, 2}, {600, 97}, {1, 3, 2500}, {5, 2100}} {
			for axis := 0; axis < len(shape)-1; axis++ {
				for _, op := range []ReduceOp{OpSum, OpMean} {
					x := FromHost(c, F32, specialFloats(r, shape.Numel()), shape...)
					out := shape.Clone()
					out[axis] = 1
					got, want := New(c, F32, out...), New(c, F32, out...)
					if !reduceLeadingF32(op, got, x, axis) {
						t.Fatalf("%v axis %d: the fast path declined", shape, axis)
					}
					reduce[float32](op, want, x, axis)
					if i, ok := sameBits(got.F32(), want.F32()); !ok {
						t.Fatalf("procs %d %v axis %d op %v: element %d is %v, the walk's %v", procs, shape, axis, op, i, got.F32()[i], want.F32()[i])
					}
				}
			}
		}
		runtime.GOMAXPROCS(prev)
	}
}
