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
	m, a, ids := randomAdapter(t, dt, 0.05)
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
	obj := &Objective{Model: m, Spec: Spec{Beta: 0.7}, Reference: AdapterOff(m, a)}
	return m, a, obj, b, l
}

// randomAdapter is the fixture's tiny Llama computing in dt with a LoRA
// adapter whose B is random of scale scale (so the policy is not the
// reference), and a source of random token ids.
func randomAdapter(t *testing.T, dt tensor.DType, scale float64) (*nn.Model, *lora.Adapter, func(n int) []int32) {
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
			v[i] = scale * r.NormFloat64()
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
	return m, a, ids
}

// directLoss is the DPO loss from full logits, computed apart from the
// objective: log-softmax per position in float64, the completion tokens'
// log probabilities summed per row, and each of spec's loss types written
// out as TRL's DPOTrainer._compute_loss states it (huggingface/trl
// f2cd577), weighted and summed.
func directLoss(t *testing.T, m *nn.Model, a *lora.Adapter, b train.Batch, spec Spec) float64 {
	t.Helper()
	rows, T := b.InputIDs.Dim(0), b.InputIDs.Dim(1)
	labels := b.Labels.I64()
	// completion_mask.sum(dim=1): a row's completion tokens.
	n := make([]float64, rows)
	for i := range rows {
		for t := range T {
			if labels[i*T+t] != nn.IgnoreIndex {
				n[i]++
			}
		}
	}
	policy := rowLogps(t, m, b)
	lora.Detach(m)
	ref := rowLogps(t, m, b)
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	B := len(policy) / 2
	logsigmoid := func(x float64) float64 { return -math.Log1p(math.Exp(-x)) }
	types, weights := spec.Types, spec.Weights
	if len(types) == 0 {
		types = []string{LossSigmoid}
	}
	loss := 0.0
	for k, typ := range types {
		w := 1.0
		if weights != nil {
			w = weights[k]
		}
		if typ == LossSFT || typ == LossORPO { // cross-entropy over the chosen rows' completion tokens
			sum, tokens := 0.0, 0.0
			for i := range B {
				sum -= policy[i]
				tokens += n[i]
			}
			loss += w * sum / tokens
			if typ == LossSFT {
				continue
			}
		}
		mean := 0.0
		for i := range B {
			beta, eps := spec.Beta, spec.LabelSmoothing
			chosen, rejected := policy[i]-ref[i], policy[B+i]-ref[B+i]
			delta := chosen - rejected
			var l float64
			switch typ {
			case LossSigmoid:
				l = -logsigmoid(beta * delta)
			case LossHinge:
				l = math.Max(0, 1-beta*delta)
			case LossIPO:
				d := chosen/n[i] - rejected/n[B+i]
				l = (d - 1/(2*beta)) * (d - 1/(2*beta))
			case LossRobust:
				l = (-(1-eps)*logsigmoid(beta*delta) - (-eps * logsigmoid(-beta*delta))) / (1 - 2*eps)
			case LossSigmoidNorm:
				l = -logsigmoid(beta * (chosen/n[i] - rejected/n[B+i]))
			case LossORPO: // TRL's ORPOTrainer.odds_ratio_loss on mean log-probabilities; the nll is above
				pc, pr := policy[i]/n[i], policy[B+i]/n[B+i]
				logOdds := (pc - pr) - (math.Log(1-math.Exp(pc)) - math.Log(1-math.Exp(pr)))
				l = -beta * logsigmoid(logOdds)
			case LossSimPO: // TRL's CPOTrainer.cpo_loss, loss_type simpo
				gamma := spec.SimPOGamma
				if gamma == 0 {
					gamma = 0.5
				}
				logits := policy[i]/n[i] - policy[B+i]/n[B+i] - gamma/beta
				l = -logsigmoid(beta*logits)*(1-eps) - logsigmoid(-beta*logits)*eps
			default:
				t.Fatalf("no direct loss for %q", typ)
			}
			mean += l / float64(B)
		}
		loss += w * mean
	}
	return loss
}

// rowLogps are each row's completion log-likelihood from full logits:
// log-softmax per position in float64, summed over the labelled tokens.
func rowLogps(t *testing.T, m *nn.Model, b train.Batch) []float64 {
	t.Helper()
	rows, T := b.InputIDs.Dim(0), b.InputIDs.Dim(1)
	labels := b.Labels.I64()
	out, err := m.Forward(nil, nn.Batch{InputIDs: b.InputIDs, AttentionMask: b.AttentionMask}, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	logits := out.Logits.Value.F64()
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

// lossSpecs are the loss types and mixes the objective is checked on.
var lossSpecs = []Spec{
	{Beta: 0.7},
	{Beta: 0.7, Types: []string{LossHinge}},
	{Beta: 0.7, Types: []string{LossIPO}},
	{Beta: 0.7, Types: []string{LossRobust}, LabelSmoothing: 0.2},
	{Beta: 0.7, Types: []string{LossSigmoidNorm}},
	{Beta: 0.7, Types: []string{LossSigmoid, LossSFT}, Weights: []float64{1, 0.3}},
	{Beta: 0.02, Types: []string{LossHinge, LossIPO, LossSFT}, Weights: []float64{0.5, 2, 1}},
	{Beta: 0.7, Types: []string{LossORPO}},
	{Beta: 2, Types: []string{LossSimPO}},
	{Beta: 2, Types: []string{LossSimPO, LossSFT}, LabelSmoothing: 0.1, SimPOGamma: 1.5},
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
	for _, spec := range lossSpecs {
		t.Run(spec.String(), func(t *testing.T) { objectiveMatchesDirect(t, spec) })
	}
}

func objectiveMatchesDirect(t *testing.T, spec Spec) {
	m, a, obj, b := setup(t)
	obj.Spec = spec
	tp := autograd.NewTape()
	out, err := obj.Forward(tp, b, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := out.Loss.Value.Item()
	want := directLoss(t, m, a, b, obj.Spec)
	if math.Abs(got-want) > 1e-10 {
		t.Fatalf("objective loss %.15g, direct DPO loss %.15g", got, want)
	}
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	analytic, move := directional(t, a)
	const h = 1e-6
	move(h)
	lp := directLoss(t, m, a, b, obj.Spec)
	move(-2 * h)
	lm := directLoss(t, m, a, b, obj.Spec)
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
	want := directLoss(t, m, a, b, obj.Spec)
	if got := st.Loss / float64(st.Pairs); st.Pairs != 3 || math.Abs(got-want) > 1e-10 {
		t.Errorf("Evaluate: %d pairs, loss %.15g; want 3 and %.15g", st.Pairs, got, want)
	}
}

// TestObjectiveUnderCheckpointing: with the decoder blocks recomputed in
// the backward (gradient checkpointing), the reference's forward before
// the policy's leaves the recompute on the adapter: the same loss and
// gradients as without, to float64 rounding.
func TestObjectiveUnderCheckpointing(t *testing.T) {
	checkpointingAgrees(t, func() (*nn.Model, *lora.Adapter, *Objective, train.Batch) { return setup(t) })
}

// checkpointingAgrees checks that the objective and batch setup makes
// give the same loss and adapter gradients with the model's decoder
// blocks recomputed in the backward as without (float64 rounding).
func checkpointingAgrees(t *testing.T, setup func() (*nn.Model, *lora.Adapter, *Objective, train.Batch)) {
	t.Helper()
	grads := func(ckpt bool) (float64, map[string][]float64) {
		m, a, obj, b := setup()
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

// TestReferenceFreeLossesRunNoReference: orpo and simpo (with sft beside
// them or not) never run the reference's forward, and their rewards are β
// times the completions' mean token log-likelihoods, as TRL's ORPO and
// CPO trainers log them; a loss that reads the reference runs it once.
func TestReferenceFreeLossesRunNoReference(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		refs int
	}{
		{Spec{Beta: 0.5, Types: []string{LossORPO}}, 0},
		{Spec{Beta: 0.5, Types: []string{LossSimPO, LossSFT}}, 0},
		{Spec{Beta: 0.5, Types: []string{LossSimPO, LossSigmoid}}, 1},
	} {
		t.Run(tc.spec.String(), func(t *testing.T) {
			_, _, obj, b := setup(t)
			obj.Spec = tc.spec
			off := obj.Reference
			calls := 0
			obj.Reference = func(f func() error) error { calls++; return off(f) }
			tp := autograd.NewTape()
			if _, err := obj.Forward(tp, b, nn.ForwardOptions{}); err != nil {
				t.Fatal(err)
			}
			if calls != tc.refs {
				t.Errorf("the reference ran %d times, want %d", calls, tc.refs)
			}
			if tc.refs > 0 {
				return
			}
			m := sumStats(obj.micro).Metrics("train/", false)
			policy := rowLogps(t, obj.Model, b)
			n := completionLengths(b.Labels.I64(), b.InputIDs.Dim(1))
			B := len(n) / 2
			chosen, rejected := 0.0, 0.0
			for i := range B {
				chosen += tc.spec.Beta * policy[i] / float64(n[i]) / float64(B)
				rejected += tc.spec.Beta * policy[B+i] / float64(n[B+i]) / float64(B)
			}
			if math.Abs(m["train/rewards/chosen"]-chosen) > 1e-12 || math.Abs(m["train/rewards/rejected"]-rejected) > 1e-12 {
				t.Errorf("rewards chosen %.15g, rejected %.15g; want β·π/n: %.15g, %.15g", m["train/rewards/chosen"], m["train/rewards/rejected"], chosen, rejected)
			}
		})
	}
}
