package dpo

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/nn"
)

// TestLossByHand: two pairs with hand-computed margins; the loss, its
// gradient and the rewards TRL logs.
func TestLossByHand(t *testing.T) {
	// policy: chosen -10, -4; rejected -12, -3. reference: chosen -11, -4;
	// rejected -11, -4. z = β((πc − πr) − (rc − rr)): pair 0: 0.5(2 − 0)
	// = 1, pair 1: 0.5(−1 − 0) = −0.5.
	policy, ref := []float64{-10, -4, -12, -3}, []float64{-11, -4, -11, -4}
	loss, grad, st, err := Loss(Spec{Beta: 0.5}, policy, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	softplus := func(x float64) float64 { return math.Log1p(math.Exp(x)) }
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	want := (softplus(-1) + softplus(0.5)) / 2
	if math.Abs(loss-want) > 1e-15 {
		t.Errorf("loss %.17g, want %.17g", loss, want)
	}
	g0, g1 := -0.5*sig(-1)/2, -0.5*sig(0.5)/2
	if wantG := []float64{g0, g1, -g0, -g1}; !near(grad, wantG, 1e-15) {
		t.Errorf("gradient %v, want %v", grad, wantG)
	}
	// rewards: β(π − ref): chosen 0.5, 0; rejected −0.5, 0.5.
	m := st.Metrics("val/", true)
	for k, v := range map[string]float64{"val/rewards/chosen": 0.25, "val/rewards/rejected": 0, "val/rewards/margins": 0.25,
		"val/rewards/accuracies": 0.5, "val/logps/chosen": -7, "val/logps/rejected": -7.5, "val/loss": want} {
		if math.Abs(m[k]-v) > 1e-15 {
			t.Errorf("%s = %g, want %g", k, m[k], v)
		}
	}
	if _, ok := st.Metrics("train/", false)["train/loss"]; ok {
		t.Error("a training step's metrics repeat the loss")
	}
	// Far from 0 the loss stays finite (softplus without overflow).
	if l, _, _, err := Loss(Spec{Beta: 1}, []float64{0, 2000}, []float64{0, 0}, nil); err != nil || math.Abs(l-2000) > 1e-9 {
		t.Errorf("z = −2000: loss %g, %v; want 2000", l, err)
	}
	// A NaN log-likelihood (diverged weights): a NaN loss for the
	// trainer's guard, a zero gradient, no error.
	if l, g, _, err := Loss(Spec{Beta: 1}, []float64{math.NaN(), -2}, []float64{-1, -2}, nil); err != nil || !math.IsNaN(l) || g[0] != 0 || g[1] != 0 {
		t.Errorf("a NaN log-likelihood: loss %g, gradient %v, %v", l, g, err)
	}
	if _, _, _, err := Loss(Spec{Beta: 1}, []float64{1, 2, 3}, []float64{1, 2, 3}, nil); err == nil {
		t.Error("an odd number of log-likelihoods was accepted")
	}
}

func near(a, b []float64, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol {
			return false
		}
	}
	return true
}

// TestMakePairs: completions cut at the end to fit, pairs whose prompt
// leaves no room dropped (and pairs that truncation makes equal), bad
// pairs refused by source.
func TestMakePairs(t *testing.T) {
	ids := func(n int, base int32) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = base + int32(i)
		}
		return out
	}
	in := []Pair{
		{Prompt: ids(3, 1), Chosen: ids(2, 10), Rejected: ids(3, 20), Source: "a:1"},             // fits
		{Prompt: ids(6, 1), Chosen: ids(4, 10), Rejected: ids(1, 20), Source: "a:2"},             // chosen cut to 2
		{Prompt: ids(8, 1), Chosen: ids(1, 10), Rejected: ids(1, 20), Source: "a:3"},             // no room
		{Prompt: ids(6, 1), Chosen: ids(3, 10), Rejected: append(ids(2, 10), 99), Source: "a:4"}, // equal once cut
	}
	out, st, err := MakePairs(in, 8)
	if err != nil {
		t.Fatal(err)
	}
	if st != (TruncStats{Kept: 2, Truncated: 1, Dropped: 2}) || len(out) != 2 {
		t.Fatalf("stats %+v, %d pairs", st, len(out))
	}
	if !slices.Equal(out[1].Chosen, ids(2, 10)) || !slices.Equal(out[1].Rejected, ids(1, 20)) {
		t.Errorf("truncated pair: %+v", out[1])
	}
	for _, bad := range []struct {
		p    Pair
		want string
	}{
		{Pair{Chosen: ids(1, 1), Rejected: ids(1, 2), Source: "b:1"}, "b:1: the prompt is empty"},
		{Pair{Prompt: ids(1, 1), Rejected: ids(1, 2), Source: "b:2"}, "b:2: an empty completion"},
		{Pair{Prompt: ids(1, 1), Chosen: ids(2, 5), Rejected: ids(2, 5), Source: "b:3"}, "b:3: the chosen and the rejected"},
	} {
		if _, _, err := MakePairs([]Pair{bad.p}, 0); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("err = %v, want %q", err, bad.want)
		}
	}
}

// TestLoaderLayout: B pairs become 2B rows, the chosen then the rejected
// in the same order, labelled on the completions only, padded on the
// right; shuffling follows the seed and the epoch, and Seek resumes.
func TestLoaderLayout(t *testing.T) {
	pairs := []Pair{
		{Prompt: []int32{1, 2}, Chosen: []int32{3}, Rejected: []int32{4, 5}},
		{Prompt: []int32{6}, Chosen: []int32{7, 8, 9}, Rejected: []int32{10}},
		{Prompt: []int32{11}, Chosen: []int32{12}, Rejected: []int32{13}},
	}
	l, err := NewLoader(pairs, 2, false, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	const I = nn.IgnoreIndex
	wantIDs := []int64{1, 2, 3, 0, 6, 7, 8, 9, 1, 2, 4, 5, 6, 10, 0, 0}
	wantLabels := []int64{I, I, 3, I, I, 7, 8, 9, I, I, 4, 5, I, 10, I, I}
	if got := b.InputIDs.I64(); !slices.Equal(got, wantIDs) || b.InputIDs.Dim(0) != 4 {
		t.Errorf("ids %v (shape %v), want %v", got, b.InputIDs.Shape(), wantIDs)
	}
	if got := b.Labels.I64(); !slices.Equal(got, wantLabels) {
		t.Errorf("labels %v, want %v", got, wantLabels)
	}
	if b, err := l.Next(); err != nil || b.InputIDs.Dim(0) != 2 {
		t.Fatalf("the last batch: %v rows, %v", b.InputIDs, err)
	}
	if _, err := l.Next(); err != io.EOF {
		t.Fatalf("after the epoch: %v, want EOF", err)
	}
	first := func(l *Loader) int64 {
		b, err := l.Next()
		if err != nil {
			t.Fatal(err)
		}
		return b.InputIDs.I64()[0]
	}
	a, _ := NewLoader(pairs, 1, true, 7, 0, nil)
	c, _ := NewLoader(pairs, 1, true, 7, 0, nil)
	var order []int64
	for range pairs {
		order = append(order, first(a))
	}
	c.Seek(0, 2)
	if got := first(c); got != order[2] {
		t.Errorf("Seek(0, 2) gives the pair starting %d, the epoch's third starts %d", got, order[2])
	}
	a.StartEpoch(1)
	var next []int64
	for range pairs {
		next = append(next, first(a))
	}
	if slices.Equal(order, next) && slices.Equal(order, []int64{1, 6, 11}) {
		t.Errorf("shuffling left the order as written in both epochs: %v", order)
	}
}
