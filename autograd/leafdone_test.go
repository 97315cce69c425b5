package autograd

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// leafDoneRun runs loss = sum(((x·a)·c)·b + x·b) — a used first, b last and
// twice — optionally with (x·a) inside a Checkpoint that also uses b, and
// returns each leaf's gradient as it was when LeafDone reported it, the
// report order, and the final gradients.
func leafDoneRun(t *testing.T, checkpoint bool) (atDone map[string][]float64, order []string, final map[string][]float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	x := Const(randT(r, 3, 4))
	a, b, c := Param(randT(r, 4, 4), "a"), Param(randT(r, 4, 4), "b"), Param(randT(r, 4, 4), "c")
	tp := NewTape()
	atDone = map[string][]float64{}
	tp.LeafDone = func(v *Var) {
		if _, twice := atDone[v.Name]; twice {
			t.Errorf("%s reported twice", v.Name)
		}
		atDone[v.Name] = slices.Clone(tensor.F64Data(v.Grad.Contiguous()))
		order = append(order, v.Name)
	}
	var h *Var
	if checkpoint {
		h = tp.Checkpoint(func(tp *Tape, in []*Var) []*Var {
			return []*Var{tp.Add(tp.MatMul(in[0], a, false, false), tp.MatMul(in[0], b, false, false))}
		}, x)[0]
	} else {
		h = tp.MatMul(x, a, false, false)
	}
	y := tp.MatMul(tp.MatMul(h, c, false, false), b, false, false)
	loss := tp.SumAll(tp.Add(y, tp.MatMul(x, b, false, false)))
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	final = map[string][]float64{}
	for _, v := range []*Var{a, b, c} {
		final[v.Name] = tensor.F64Data(v.Grad.Contiguous())
	}
	return atDone, order, final
}

// TestLeafDoneReportsCompleteGradients: every trainable leaf is reported
// once, with its final gradient already in place, the leaf used last in
// the forward first; a leaf that a Checkpoint node may also feed (b, used
// inside the checkpointed function, which the tape does not see) is
// reported only after that node has run.
func TestLeafDoneReportsCompleteGradients(t *testing.T) {
	for _, checkpoint := range []bool{false, true} {
		atDone, order, final := leafDoneRun(t, checkpoint)
		want := []string{"b", "c", "a"}
		if checkpoint {
			want = []string{"c", "b"} // a is used inside the checkpoint only: not reported
		}
		if !slices.Equal(order, want) {
			t.Errorf("checkpoint %v: reported %v, want %v", checkpoint, order, want)
		}
		for name, g := range atDone {
			if !slices.Equal(g, final[name]) {
				t.Errorf("checkpoint %v: %s reported with gradient %v, final %v", checkpoint, name, g, final[name])
			}
		}
	}
}
