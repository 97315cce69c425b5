package train

import (
	"testing"
	"time"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train/commtest"
)

// TestGradSyncBuckets: gradients are summed across workers through
// buckets of whole parameters (a parameter larger than a bucket alone); a
// parameter only one worker has a gradient for gets the sum (zeros
// elsewhere), and one no worker has stays without a gradient, as in one
// process; the first step lays the buckets out (here in name order: no
// tape reported an order) and the second reuses them.
func TestGradSyncBuckets(t *testing.T) {
	be := tensor.CPUDefault()
	build := func(rank int) *Trainer {
		v := func(n int, grad bool) *autograd.Var {
			return autograd.Param(tensor.Zeros(be, tensor.F32, n), "")
		}
		tr := &Trainer{Params: map[string]*autograd.Var{"a": v(12, true), "b": v(3, rank == 1), "c": v(2, false), "d": v(1, true)}}
		tr.DP.BucketFloats, tr.Cfg.GradAccum = 5, 1
		return tr
	}
	setGrads := func(tr *Trainer, rank int) {
		if err := tr.zeroGrad(); err != nil { // as after an optimizer step
			t.Fatal(err)
		}
		for name, n := range map[string]int{"a": 12, "b": 3, "d": 1} {
			if name == "b" && rank == 0 {
				continue
			}
			g := make([]float32, n)
			for i := range g {
				g[i] = float32((rank+1)*100 + i)
			}
			tr.Params[name].Grad = tensor.FromF32(be, g, n)
		}
	}
	trs := []*Trainer{build(0), build(1)}
	losses := make([][]float64, 2)
	errs := commtest.Run(2, func(c dist.Comm) error {
		tr := trs[c.Rank()]
		tr.Comm = c
		for step := range 2 {
			setGrads(tr, c.Rank())
			loss, err := tr.startSync(nil).finish([]float64{float64(c.Rank()) + 0.5})
			if err != nil {
				return err
			}
			losses[c.Rank()] = append(losses[c.Rank()], loss)
			tr.State.Step = step + 1
		}
		return nil
	})
	for r, tr := range trs {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if losses[r][0] != 2 || losses[r][1] != 2 {
			t.Errorf("rank %d: loss sums %v, want [2 2]", r, losses[r])
		}
		if p := tr.DP.plan; len(p.first) != 3 || p.params(0) != 1 || p.params(1) != 2 || p.params(2) != 1 {
			t.Errorf("rank %d: buckets start at %v of %v, want [a] [b c] [d]", r, p.first, p.names)
		}
		for name, base := range map[string]float32{"a": 300, "b": 200, "d": 300} {
			for i, g := range tr.Params[name].Grad.F32() {
				if want := base + float32(map[string]int{"a": 2, "b": 1, "d": 2}[name]*i); g != want {
					t.Fatalf("rank %d %s[%d] = %g, want %g", r, name, i, g, want)
				}
			}
		}
		if tr.Params["c"].Grad != nil {
			t.Errorf("rank %d: c got a gradient no worker computed", r)
		}
	}
}

// TestGradTreeSplitsLikeOneProcess: the tree's sum of six slots, with
// absent leaves, equals the sum of two workers' halves (slots 0-2 and
// 3-5, the other half absent) added last, bit for bit; and a short step
// (four slots of six) sums what it has.
func TestGradTreeSplitsLikeOneProcess(t *testing.T) {
	be := tensor.CPUDefault()
	slot := func(i int) *tensor.Tensor {
		if i == 4 {
			return nil // no gradient for the parameter in slot 4
		}
		return tensor.FromF32(be, []float32{1e8 / float32(i+1), 1.0 / 3 * float32(i), -float32(i) * 0.7}, 3)
	}
	sum := func(owned func(int) bool, slots int) []float32 {
		v := autograd.Param(tensor.Zeros(be, tensor.F32, 3), "p")
		gt := newGradTree(6)
		for i := 0; i < slots; i++ {
			if owned(i) {
				v.Grad = slot(i)
			}
			gt.add(v, i)
		}
		gt.finishOne(v, slots)
		if v.Grad == nil {
			return nil
		}
		return v.Grad.F32()
	}
	all := sum(func(int) bool { return true }, 6)
	left, right := sum(func(i int) bool { return i < 3 }, 6), sum(func(i int) bool { return i >= 3 }, 6)
	// ((g0 + (g1+g2)) + (g3 + (g4+g5))) with g4 absent
	g := func(i int) []float32 { return slot(i).F32() }
	for j := range all {
		want := (g(0)[j] + (g(1)[j] + g(2)[j])) + (g(3)[j] + g(5)[j])
		if all[j] != want || left[j]+right[j] != want {
			t.Errorf("element %d: tree %g, halves %g + %g, want %g", j, all[j], left[j], right[j], want)
		}
	}
	short := sum(func(int) bool { return true }, 4)
	for j := range short {
		if want := (g(0)[j] + (g(1)[j] + g(2)[j])) + g(3)[j]; short[j] != want {
			t.Errorf("short step element %d: %g, want %g", j, short[j], want)
		}
	}
	if none := sum(func(int) bool { return false }, 6); none != nil {
		t.Errorf("no slot had a gradient, the tree made %v", none)
	}
}

// finishBySlots is the tree's definition of a short step, kept as the
// reference for finishOne: every absent slot is added as a leaf.
func finishBySlots(gt *gradTree, v *autograd.Var, next int) {
	for slot := next; slot < gt.slots; slot++ {
		gt.add(v, slot)
	}
	s := gt.open[v]
	delete(gt.open, v)
	v.Grad = nil
	if len(s) == 1 {
		v.Grad = s[0].g
	}
}

// TestGradTreeFinishSkipsAbsentSlots: finishing a short step sums the
// stack from the right, bit for bit what adding every absent slot gives,
// for every step size up to 40, every stopping slot and slots with and
// without a gradient; and a step of 2^40 slots that stops after 3 finishes
// at once.
func TestGradTreeFinishSkipsAbsentSlots(t *testing.T) {
	be := tensor.CPUDefault()
	// Magnitudes far apart make the association of the sum visible.
	slot := func(i int) *tensor.Tensor {
		if i%5 == 3 {
			return nil
		}
		return tensor.FromF32(be, []float32{1e8 / float32(i+1), 1.0 / 3 * float32(i), -float32(i*i) * 0.7, 1e-3 * float32(i)}, 4)
	}
	run := func(k, next int, finish func(*gradTree, *autograd.Var, int)) []float32 {
		v := autograd.Param(tensor.Zeros(be, tensor.F32, 4), "p")
		gt := newGradTree(k)
		for i := range next {
			v.Grad = slot(i)
			gt.add(v, i)
		}
		finish(gt, v, next)
		if v.Grad == nil {
			return nil
		}
		return v.Grad.F32()
	}
	for k := 2; k <= 40; k++ {
		for next := 0; next <= k; next++ {
			got, want := run(k, next, (*gradTree).finishOne), run(k, next, finishBySlots)
			if (got == nil) != (want == nil) {
				t.Fatalf("K=%d, %d slots run: gradient %v, by slots %v", k, next, got, want)
			}
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("K=%d, %d slots run: element %d is %g, by slots %g", k, next, j, got[j], want[j])
				}
			}
		}
	}
	done := make(chan []float32, 1)
	go func() { done <- run(1<<40, 3, (*gradTree).finishOne) }()
	select {
	case got := <-done:
		if want := run(4, 3, finishBySlots); got[0] != want[0] {
			t.Errorf("2^40 slots, 3 run: %v, want %v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("finishing a step of 2^40 slots after 3 did not end in 10 s")
	}
}
