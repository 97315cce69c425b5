package autograd

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

func TestGradLinearCrossEntropyRows(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	labels := tensor.FromHost(cpu, tensor.I64, []int64{2, -100, 0, 4, 1}, 5)
	w := Const(randT(r, 6, 3))
	for _, softcap := range []float64{0, 1.5} {
		gradCheck(t, "linear_cross_entropy_rows", func(tp *Tape, in []*Var) *Var {
			l, err := tp.LinearCrossEntropyRows(in[0], w, labels, -100, 2, softcap)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}, randT(r, 5, 3))
	}
}

// The rows are the mean loss's terms: their mean over labelled rows is
// LinearCrossEntropy's loss, ignored rows are 0, and weighting every row
// by 1/n gives the mean loss's gradient. Within 1e-7 relative, not
// exactly: the mean loss scales by 1/n rounded to float32 (the backends'
// CrossEntropy scale), 1.5e-8 relative for n = 5.
func TestLinearCrossEntropyRowsIsTheMeanLossTerms(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	labels := tensor.FromHost(cpu, tensor.I64, []int64{2, -100, 0, 4, 1, 3, -100}, 7)
	hv, w := randT(r, 7, 4), Const(randT(r, 6, 4))
	h1, h2 := Param(hv.Clone(), "h"), Param(hv.Clone(), "h")
	tp := NewTape()
	mean, err := tp.LinearCrossEntropy(h1, w, labels, -100, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Backward(mean); err != nil {
		t.Fatal(err)
	}
	tp = NewTape()
	rows, err := tp.LinearCrossEntropyRows(h2, w, labels, -100, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	vals := rows.Value.F64()
	sum := 0.0
	for i, v := range vals {
		if labels.I64()[i] == -100 && v != 0 {
			t.Errorf("ignored row %d has loss %g", i, v)
		}
		sum += v
	}
	if got, want := sum/5, mean.Value.Item(); math.Abs(got-want) > 1e-7*math.Abs(want) {
		t.Errorf("mean of rows %.15g, LinearCrossEntropy %.15g", got, want)
	}
	loss, err := tp.HostLoss(rows, func(x []float64) (float64, []float64, error) {
		g := make([]float64, len(x))
		s := 0.0
		for i := range x {
			g[i] = 1.0 / 5
			s += x[i] / 5
		}
		return s, g, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	a, b := h1.Grad.F64(), h2.Grad.F64()
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-7*math.Abs(a[i]) {
			t.Fatalf("dh[%d]: mean loss %g, weighted rows %g", i, a[i], b[i])
		}
	}
}

func TestLinearCrossEntropyRowsRefusesATrainedHead(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	labels := tensor.FromHost(cpu, tensor.I64, []int64{1, 2}, 2)
	_, err := NewTape().LinearCrossEntropyRows(Param(randT(r, 2, 3), "h"), Param(randT(r, 4, 3), "lm_head.weight"), labels, -100, 0, 0)
	if err == nil || !strings.Contains(err.Error(), "lm_head.weight") {
		t.Fatalf("err = %v, want a refusal naming lm_head.weight", err)
	}
}

func TestGradHostLoss(t *testing.T) {
	r := rand.New(rand.NewPCG(37, 38))
	// −log σ(x0 − x1) + x2²: a pairwise loss like DPO's, and a square.
	f := func(x []float64) (float64, []float64, error) {
		d := x[0] - x[1]
		sig := 1 / (1 + math.Exp(-d))
		return -math.Log(sig) + x[2]*x[2], []float64{sig - 1, 1 - sig, 2 * x[2]}, nil
	}
	gradCheck(t, "host_loss", func(tp *Tape, in []*Var) *Var {
		l, err := tp.HostLoss(tp.Scale(in[0], 1.5), f)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, randT(r, 3))
	bad := func(x []float64) (float64, []float64, error) { return 0, []float64{math.NaN(), 0, 0}, nil }
	if _, err := NewTape().HostLoss(Param(randT(r, 3), "x"), bad); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("a NaN gradient: err = %v", err)
	}
}
