package train

import (
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train/commtest"
)

// TestAllReduceStepBuckets: gradients are summed across workers through
// buckets smaller than one tensor and spanning several; a parameter only
// one worker has a gradient for gets the sum (zeros elsewhere), and one no
// worker has stays without a gradient, as in one process.
func TestAllReduceStepBuckets(t *testing.T) {
	defer func(n int) { gradBucketFloats = n }(gradBucketFloats)
	gradBucketFloats = 5
	be := tensor.CPUDefault()
	build := func(rank int) *Trainer {
		v := func(n int, grad bool) *autograd.Var {
			p := autograd.Param(tensor.Zeros(be, tensor.F32, n), "")
			if grad {
				g := make([]float32, n)
				for i := range g {
					g[i] = float32((rank+1)*100 + i)
				}
				p.Grad = tensor.FromF32(be, g, n)
			}
			return p
		}
		return &Trainer{Params: map[string]*autograd.Var{"a": v(12, true), "b": v(7, rank == 1), "c": v(2, false)}}
	}
	trs := []*Trainer{build(0), build(1)}
	losses := make([]float64, 2)
	errs := commtest.Run(2, func(c dist.Comm) error {
		tr := trs[c.Rank()]
		tr.Comm = c
		var err error
		losses[c.Rank()], err = tr.allReduceStep(float64(c.Rank()) + 0.5)
		return err
	})
	for r, tr := range trs {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if losses[r] != 2 {
			t.Errorf("rank %d: loss sum %g, want 2", r, losses[r])
		}
		for i, g := range tr.Params["a"].Grad.F32() {
			if want := float32(300 + 2*i); g != want {
				t.Fatalf("rank %d a[%d] = %g, want %g", r, i, g, want)
			}
		}
		for i, g := range tr.Params["b"].Grad.F32() {
			if want := float32(200 + i); g != want {
				t.Fatalf("rank %d b[%d] = %g, want %g", r, i, g, want)
			}
		}
		if tr.Params["c"].Grad != nil {
			t.Errorf("rank %d: c got a gradient no worker computed", r)
		}
	}
}
