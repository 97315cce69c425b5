package dpo

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

// The transformers fixture's tiny Llama (2 layers, hidden 64) in float64
// with a LoRA adapter whose B is random (so the policy
// is not the reference), and three preference pairs of random tokens.
func setup(t *testing.T) (*nn.Model, *lora.Adapter, *Objective, train.Batch) {
	t.Helper()
	m, a, obj, b, _ := setupAs(t, tensor.F64)
	return m, a, obj, b
}

// setupAs is setup with the model computing in dt.
// The loader holds the three pairs as one batch an epoch.
func setupAs(t *testing.T, dt tensor.DType) (*nn.Model, *lora.Adapter, *Objective, train.Batch, *Loader) {
	t.Helper()
	m, a := loratest.Attached(t, "../../testdata/fixtures/llama-tiny", nn.LoadOptions{DType: dt}, lora.NewConfig(4, 8, "q_proj", "v_proj", "down_proj"), 3)
	r := rand.New(rand.NewPCG(5, 6))
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range a.Layers {
			if !yield(k) {
				return
			}
		}
	}) {
		b := a.Layers[name].B.Value
		v := make([]float64, b.Numel())
		for i := range v {
			v[i] = 0.05 * r.NormFloat64()
		}
		b.CopyFrom(tensor.FromHost(b.Backend(), tensor.F64, v, b.Shape()...).To(b.DType()))
	}
	ids := func(n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(r.IntN(m.Config.VocabSize))
		}
		return out
	}
	pairs := []Pair{
		{Prompt: ids(5), Chosen: ids(3), Rejected: ids(4)},
		{Prompt: ids(2), Chosen: ids(6), Rejected: ids(1)},
		{Prompt: ids(7), Chosen: ids(2), Rejected: ids(2)},
	}
	l, err := NewLoader(pairs, 3, false, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	l.StartEpoch(0)
	obj := &Objective{Model: m, Beta: 0.7, Reference: AdapterOff(m, a)}
	return m, a, obj, b, l
}

// directLoss is the DPO loss from full logits, computed apart from the
// objective: log-softmax per position in float64, the completion tokens'
// log probabilities summed per row, TRL's sigmoid loss.
func directLoss(t *testing.T, m *nn.Model, a *lora.Adapter, b train.Batch, beta float64) float64 {
	t.Helper()
	logps := func() []float64 {
		out, err := m.Forward(nil, nn.Batch{InputIDs: b.InputIDs, AttentionMask: b.AttentionMask}, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rows, T, V := b.InputIDs.Dim(0), b.InputIDs.Dim(1), m.Config.VocabSize
		logits, labels := out.Logits.Value.F64(), b.Labels.I64()
		sums := make([]float64, rows)
		for i := range rows {
			for t := 0; t+1 < T; t++ {
				lab := labels[i*T+t+1]
				if lab == nn.IgnoreIndex {
					continue
				}
				row := logits[(i*T+t)*V : (i*T+t+1)*V]
				mx := slices.Max(row)
				s := 0.0
				for _, v := range row {
					s += math.Exp(v - mx)
				}
				sums[i] += row[lab] - mx - math.Log(s)
			}
		}
		return sums
	}
	policy := logps()
	lora.Detach(m)
	ref := logps()
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	B := len(policy) / 2
	loss := 0.0
	for i := range B {
		z := beta * ((policy[i] - policy[B+i]) - (ref[i] - ref[B+i]))
		loss += math.Log1p(math.Exp(-z)) / float64(B)
	}
	return loss
}

// TestObjectiveMatchesDirectDPO: the objective's loss is the DPO loss
// computed from full logits, and its gradient is the loss's: the
// directional derivative along a random direction of every adapter
// weight matches central differences of the direct loss. Float64
// throughout, so 1e-10 (loss) and 1e-6 relative (derivative; h = 1e-6
// along a direction of norm ≈ 100: truncation ≈ (1e-4)² and rounding
// ε/h ≈ 1e-10, measured 1e-8) are loose bounds that any wrong sign, scale
// or masked token breaks.
func TestObjectiveMatchesDirectDPO(t *testing.T) {
	m, a, obj, b := setup(t)
	tp := autograd.NewTape()
	out, err := obj.Forward(tp, b, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := out.Loss.Value.Item()
	want := directLoss(t, m, a, b, obj.Beta)
	if math.Abs(got-want) > 1e-10 {
		t.Fatalf("objective loss %.15g, direct DPO loss %.15g", got, want)
	}
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	params := a.Params()
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range params {
			if !yield(k) {
				return
			}
		}
	})
	r := rand.New(rand.NewPCG(9, 10))
	dirs := map[string][]float64{}
	analytic := 0.0
	for _, n := range names {
		p := params[n]
		if p.Grad == nil {
			t.Fatalf("%s has no gradient", n)
		}
		g := p.Grad.F64()
		d := make([]float64, len(g))
		for i := range d {
			d[i] = r.NormFloat64()
			analytic += d[i] * g[i]
		}
		dirs[n] = d
	}
	move := func(s float64) {
		for _, n := range names {
			v := tensor.F64Data(params[n].Value)
			for i, d := range dirs[n] {
				v[i] += s * d
			}
		}
	}
	const h = 1e-6
	move(h)
	lp := directLoss(t, m, a, b, obj.Beta)
	move(-2 * h)
	lm := directLoss(t, m, a, b, obj.Beta)
	move(h)
	numeric := (lp - lm) / (2 * h)
	if math.Abs(numeric-analytic) > 1e-6*math.Max(1, math.Abs(numeric)) {
		t.Errorf("directional derivative: objective %.10g, central differences %.10g", analytic, numeric)
	}
	t.Logf("loss %.10f; directional derivative %.8g (numeric %.8g)", got, analytic, numeric)
}

// TestEvaluateIsTheLossWithoutATape: Evaluate gives the training loss's
// value and the rewards of the same pairs.
func TestEvaluateIsTheLossWithoutATape(t *testing.T) {
	m, a, obj, b, l := setupAs(t, tensor.F64)
	st, err := obj.Evaluate(context.Background(), l, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := directLoss(t, m, a, b, obj.Beta)
	if got := st.Loss / float64(st.Pairs); st.Pairs != 3 || math.Abs(got-want) > 1e-10 {
		t.Errorf("Evaluate: %d pairs, loss %.15g; want 3 and %.15g", st.Pairs, got, want)
	}
}

// TestObjectiveUnderCheckpointing: with the decoder blocks recomputed in
// the backward (gradient checkpointing), the reference's forward before
// the policy's leaves the recompute on the adapter: the same loss and
// gradients as without, to float64 rounding.
func TestObjectiveUnderCheckpointing(t *testing.T) {
	grads := func(ckpt bool) (float64, map[string][]float64) {
		m, a, obj, b := setup(t)
		m.Checkpointing = ckpt
		tp := autograd.NewTape()
		out, err := obj.Forward(tp, b, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		g := map[string][]float64{}
		for n, p := range a.Params() {
			g[n] = p.Grad.F64()
		}
		return out.Loss.Value.Item(), g
	}
	l0, g0 := grads(false)
	l1, g1 := grads(true)
	if math.Abs(l0-l1) > 1e-12 {
		t.Errorf("loss %.15g without checkpointing, %.15g with", l0, l1)
	}
	for n, g := range g0 {
		for i := range g {
			if math.Abs(g[i]-g1[n][i]) > 1e-10*math.Max(1, math.Abs(g[i])) {
				t.Fatalf("%s[%d]: %g without checkpointing, %g with", n, i, g[i], g1[n][i])
			}
		}
	}
}

// TestDivergedWeightsMeetTheTrainersGuard: weights gone NaN make the DPO
// loss NaN; the trainer's guard skips those steps and gives up with its
// advice (train.ErrDiverged), as for a supervised loss, instead of the
// objective failing the run with an error of its own. The weights are NaN
// before any update, so the advice is about the weights, not the learning
// rate.
func TestDivergedWeightsMeetTheTrainersGuard(t *testing.T) {
	_, a, obj, _, l := setupAs(t, tensor.F32)
	for _, l := range a.Layers {
		tensor.F32Data(l.B.Value)[0] = float32(math.NaN())
		break
	}
	opt, err := optim.NewAdamW(optim.DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	tr := &train.Trainer{Model: obj.Model, Params: a.Params(), Opt: opt, Train: l, Forward: obj.Forward,
		Callbacks: []train.Callback{obj}, Cfg: train.Config{MaxSteps: 20, GradAccum: 1, LR: 1e-3}}
	err = tr.Fit(context.Background())
	if !errors.Is(err, train.ErrDiverged) || !strings.Contains(err.Error(), "no update was ever applied") {
		t.Fatalf("Fit on NaN weights: %v, want train.ErrDiverged with its advice", err)
	}
}
