package lora

import (
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

const fixture = "../testdata/fixtures/llama-tiny"

func randomAdapter(t *testing.T, m *nn.Model, name string, seed uint64) *Adapter {
	t.Helper()
	c := NewConfig(4, 8, "q_proj", "v_proj", "down_proj")
	c.InitLoraWeights = InitLoraWeights{Bool: false} // random B: a non-zero delta
	a, err := New(m, c, name, seed)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRoutingMatchesSeparateRuns: a mixed batch routed per row gives the
// outputs and gradients of running each subject's rows alone, and an
// adapter gets gradients only from its own rows.
func TestRoutingMatchesSeparateRuns(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSubjectAdapterModel(m)
	for i, name := range []string{"chemistry", "geography", "unused"} {
		if err := s.Add(randomAdapter(t, m, name, uint64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	B, T := 4, 7
	ids := make([]int64, B*T)
	labels := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64((i*37 + 11) % m.Config.VocabSize)
		labels[i] = ids[i]
	}
	rows := []string{"chemistry", "geography", "", "chemistry"}
	batchOf := func(sel []int) nn.Batch {
		var id, lb []int64
		for _, b := range sel {
			id = append(id, ids[b*T:(b+1)*T]...)
			lb = append(lb, labels[b*T:(b+1)*T]...)
		}
		return nn.Batch{
			InputIDs: tensor.FromHost(m.Backend, tensor.I64, id, len(sel), T),
			Labels:   tensor.FromHost(m.Backend, tensor.I64, lb, len(sel), T),
		}
	}
	zero := func() {
		for _, n := range s.Names() {
			a, _ := s.Adapter(n)
			for _, p := range a.Params() {
				p.ZeroGrad()
			}
		}
	}
	// Loss as a sum over rows so that per-row gradients add up exactly:
	// every row has T−1 labelled tokens, so mean·count is the sum.
	run := func(b nn.Batch, rt []string) (logits []float64, sumLoss float64) {
		tp := autograd.NewTape()
		out, err := s.ForwardRouted(tp, b, rt, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := float64(len(rt) * (T - 1))
		loss := tp.Scale(out.Loss, n)
		if !loss.RequiresGrad() {
			return out.Logits.Value.F64(), loss.Value.Item() // base rows only: nothing to train
		}
		if err := tp.Backward(loss); err != nil {
			t.Fatal(err)
		}
		return out.Logits.Value.F64(), loss.Value.Item()
	}

	zero()
	mixed, _ := run(batchOf([]int{0, 1, 2, 3}), rows)
	mixedGrads := map[string][]float64{}
	for _, n := range s.Names() {
		a, _ := s.Adapter(n)
		for k, p := range a.Params() {
			if p.Grad != nil {
				mixedGrads[n+"/"+k] = p.Grad.F64()
			}
		}
	}
	for k := range mixedGrads {
		if len(k) > 6 && k[:6] == "unused" {
			t.Fatalf("adapter with no rows got a gradient: %s", k)
		}
	}

	zero()
	V := m.Config.VocabSize
	for _, group := range [][]int{{0, 3}, {1}, {2}} {
		rt := make([]string, len(group))
		for i, b := range group {
			rt[i] = rows[b]
		}
		logits, _ := run(batchOf(group), rt)
		for i, b := range group {
			got := mixed[b*T*V : (b+1)*T*V]
			if e := testutil.RelFrobenius(got, logits[i*T*V:(i+1)*T*V]); e > 1e-6 {
				t.Errorf("row %d (%q): routed logits differ from a separate run by %.3g", b, rows[b], e)
			}
		}
	}
	// The separate runs accumulated into the same parameters: their sum
	// must equal the mixed batch's gradient.
	worst := 0.0
	for _, n := range s.Names() {
		a, _ := s.Adapter(n)
		for k, p := range a.Params() {
			want, ok := mixedGrads[n+"/"+k]
			if (p.Grad != nil) != ok {
				t.Fatalf("%s/%s: gradient present in one run only", n, k)
			}
			if ok {
				worst = max(worst, testutil.RelFrobenius(p.Grad.F64(), want))
			}
		}
	}
	t.Logf("routed vs separate: worst gradient difference %.3g", worst)
	if worst > 1e-5 {
		t.Errorf("routed gradients differ from separate runs by %.3g", worst)
	}
}

func TestSubjectAdapterModelManagement(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSubjectAdapterModel(m)
	a := randomAdapter(t, m, "law", 9)
	if err := s.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(a); err == nil {
		t.Fatal("adding the same name twice succeeded")
	}
	if err := s.SetActive("medicine"); err == nil {
		t.Fatal("activating an unknown adapter succeeded")
	}
	ids := tensor.FromHost(m.Backend, tensor.I64, []int64{5, 9, 2, 7}, 1, 4)
	logits := func() []float64 {
		out, err := m.Forward(nil, nn.Batch{InputIDs: ids}, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Logits.Value.F64()
	}
	base := logits()
	if err := s.SetActive("law"); err != nil {
		t.Fatal(err)
	}
	adapted := logits()
	if testutil.RelFrobenius(adapted, base) < 1e-4 {
		t.Fatal("active adapter did not change the output")
	}
	// Merge must reproduce the adapted output through the base path.
	if err := a.Merge(m); err != nil {
		t.Fatal(err)
	}
	Detach(m)
	if e := testutil.RelFrobenius(logits(), adapted); e > 1e-5 {
		t.Fatalf("merged output differs from adapter output by %.3g", e)
	}
	if err := a.Unmerge(m); err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelFrobenius(logits(), base); e > 1e-5 {
		t.Fatalf("unmerged output differs from base by %.3g", e)
	}
	s.Disable()
	// W + d − d is W only up to float32 rounding of the sums.
	if e := testutil.RelFrobenius(logits(), base); e > 1e-5 {
		t.Fatalf("disabled model differs from base by %.3g", e)
	}
	if err := s.Remove("law"); err != nil || len(s.Names()) != 0 {
		t.Fatalf("remove: %v, left %v", err, s.Names())
	}
}

// TestDropoutMaskRate: the mask keeps a fraction 1−p of elements, each
// scaled by 1/(1−p), so its mean is 1; the same seed gives the same mask.
func TestDropoutMaskRate(t *testing.T) {
	m, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewConfig(4, 8, "q_proj")
	c.LoraDropout = 0.1
	a, err := New(m, c, "d", 5)
	if err != nil {
		t.Fatal(err)
	}
	l := a.Layers[a.Modules()[0]]
	x := tensor.Zeros(m.Backend, tensor.F32, 1000, 101)
	state, _ := l.RNGState()
	mask := l.dropoutMask(x).F32()
	kept, sum := 0, 0.0
	for _, v := range mask {
		if v != 0 {
			kept++
			if v != float32(1/0.9) {
				t.Fatalf("kept element scaled by %g, want 1/0.9", v)
			}
		}
		sum += float64(v)
	}
	if f := float64(kept) / float64(len(mask)); f < 0.895 || f > 0.905 {
		t.Fatalf("kept fraction %.4f, want 0.9 ± 0.005", f)
	}
	if mean := sum / float64(len(mask)); mean < 0.99 || mean > 1.01 {
		t.Fatalf("mask mean %.4f, want ≈ 1", mean)
	}
	if err := l.SetRNGState(state); err != nil {
		t.Fatal(err)
	}
	again := l.dropoutMask(x).F32()
	for i := range mask {
		if mask[i] != again[i] {
			t.Fatalf("same stream, different mask at %d", i)
		}
	}
}
