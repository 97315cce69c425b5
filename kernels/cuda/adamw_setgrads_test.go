package cuda

import (
	"math"
	"testing"
)

// SetGrads repoints a list at new gradients in stream order: a GradNorm
// queued before it sums the old ones, one queued after it the new ones;
// a table of the wrong length is refused before the device is touched.
func TestTensorListSetGrads(t *testing.T) {
	if err := (&TensorList{N: 2}).SetGrads(Stream{}, []Ptr{1}); err == nil {
		t.Error("SetGrads with 1 pointer for a list of 2: accepted")
	}
	g := needGPU(t)
	sizes := []int64{3, 300}
	normOf := func(xs ...[]float32) float64 {
		var s float64
		for _, x := range xs {
			for _, v := range x {
				s += float64(v) * float64(v)
			}
		}
		return math.Sqrt(s)
	}
	a1, a2 := g.randn(3, 1, F32), g.randn(300, 1, F32)
	b1, b2 := g.randn(3, 2, F32), g.randn(300, 2, F32)
	l, err := g.d.NewTensorList(nil, []Ptr{g.up(a1, F32), g.up(a2, F32)}, nil, nil, sizes)
	g.ok(err)
	defer l.Free()
	sum, scale, before, after := g.alloc(4), g.alloc(4), g.alloc(4), g.alloc(4)
	g.ok(g.d.GradNorm(g.s, l, sum, before, scale, 0))
	g.ok(l.SetGrads(g.s, []Ptr{g.up(b1, F32), g.up(b2, F32)}))
	g.ok(g.d.GradNorm(g.s, l, sum, after, scale, 0))
	g.sync()
	compare(t, "setgrads/before", g.down(before, 1, F32), []float64{normOf(a1, a2)}, nil, tol{0, 1e-5})
	compare(t, "setgrads/after", g.down(after, 1, F32), []float64{normOf(b1, b2)}, nil, tol{0, 1e-5})
}
