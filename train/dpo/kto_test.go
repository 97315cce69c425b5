package dpo

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

// ktoSetup is the fixture's tiny Llama in float64 with a random adapter
// (the policy is not the reference) and five unpaired examples of random
// tokens, desirable and not mixed and of different lengths, as one batch
// of an UnpairedLoader (with its mismatched rows when spec needs KL).
func ktoSetup(t *testing.T, spec KTOSpec) (*nn.Model, *lora.Adapter, *Objective, train.Batch, *UnpairedLoader, []Pair) {
	t.Helper()
	m, a, ids := randomAdapter(t, tensor.F64, 0.1) // a KL estimate of 0.24, not clamped
	examples := []Pair{
		{Prompt: ids(5), Chosen: ids(3)},
		{Prompt: ids(2), Rejected: ids(6)},
		{Prompt: ids(7), Chosen: ids(2)},
		{Prompt: ids(4), Rejected: ids(4)},
		{Prompt: ids(3), Rejected: ids(5)},
	}
	l, err := NewUnpairedLoader(examples, len(examples), false, 0, spec.NeedsKL(), 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	l.StartEpoch(0)
	obj := &Objective{Model: m, KTO: &spec, Reference: AdapterOff(m, a)}
	return m, a, obj, b, l, examples
}

// directKTO is the KTO loss of examples written out from TRL's
// KTOTrainer._compute_loss (huggingface/trl f2cd577) on full logits,
// apart from the objective and its loader: the rows built here, each
// sequence's completion log-probabilities summed (rowLogps), the
// reference the adapter detached, the KL estimate from each prompt with
// the previous example's completion (the first with the last's),
// kl = clamp(mean(KL_logps − ref_KL_logps), min=0); desirable losses
// 1 − sigmoid(β(logratio − kl)), undesirable 1 − sigmoid(β(kl −
// logratio)) (apo_zero_unpaired: 1 − sigmoid(β·logratio) and
// sigmoid(β·logratio)), weighted, their mean. With fixedKL set, kl is that
// value instead (the estimate held, for the gradient's check), and kl is
// returned either way.
func directKTO(t *testing.T, m *nn.Model, a *lora.Adapter, examples []Pair, spec KTOSpec, fixedKL *float64) (loss, kl float64) {
	t.Helper()
	n := len(examples)
	var rows, mismatched []prep.Row
	completion := func(p Pair) []int32 {
		if p.Chosen != nil {
			return p.Chosen
		}
		return p.Rejected
	}
	for i, e := range examples {
		rows = append(rows, row(e.Prompt, completion(e)))
		mismatched = append(mismatched, row(e.Prompt, completion(examples[(i+n-1)%n])))
	}
	be := tensor.CPUDefault()
	batch, klBatch := train.Collate(rows, nil, 0, be), train.Collate(mismatched, nil, 0, be)
	policy, policyKL := rowLogps(t, m, batch), rowLogps(t, m, klBatch)
	lora.Detach(m)
	ref, refKL := rowLogps(t, m, batch), rowLogps(t, m, klBatch)
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	sigmoid := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	for i := range n {
		kl += (policyKL[i] - refKL[i]) / float64(n)
	}
	kl = math.Max(kl, 0)
	if fixedKL != nil {
		kl = *fixedKL
	}
	for i, e := range examples {
		logratio := policy[i] - ref[i]
		var l float64
		switch {
		case spec.LossType == KTOLossAPOZeroUnpaired && e.Chosen != nil:
			l = spec.DesirableWeight * (1 - sigmoid(spec.Beta*logratio))
		case spec.LossType == KTOLossAPOZeroUnpaired:
			l = spec.UndesirableWeight * sigmoid(spec.Beta*logratio)
		case e.Chosen != nil:
			l = spec.DesirableWeight * (1 - sigmoid(spec.Beta*(logratio-kl)))
		default:
			l = spec.UndesirableWeight * (1 - sigmoid(spec.Beta*(kl-logratio)))
		}
		loss += l / float64(n)
	}
	return loss, kl
}

// TestKTOObjectiveMatchesDirect: the objective's KTO loss on a batch of
// desirable and undesirable examples, with weights other than 1, is the
// loss written out from TRL's formulas on full logits (1e-10, float64),
// and its gradient is the loss's with the KL estimate held constant: the
// directional derivative along a random direction of every adapter weight
// matches central differences of the direct loss with kl fixed at its
// value (1e-6 relative, as TestObjectiveMatchesDirectDPO's), and differs
// from those of the direct loss whose kl moves with the weights (by more
// than 1e-3 relative): the KL estimate is detached, as TRL detaches it.
func TestKTOObjectiveMatchesDirect(t *testing.T) {
	for _, spec := range []KTOSpec{
		{Beta: 0.7, DesirableWeight: 1.7, UndesirableWeight: 0.6},
		{Beta: 0.3, DesirableWeight: 1, UndesirableWeight: 1.4},
		{Beta: 2, DesirableWeight: 0.8, UndesirableWeight: 1.3, LossType: KTOLossAPOZeroUnpaired},
	} {
		t.Run(spec.String(), func(t *testing.T) {
			m, a, obj, b, _, examples := ktoSetup(t, spec)
			tp := autograd.NewTape()
			out, err := obj.Forward(tp, b, nn.ForwardOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := out.Loss.Value.Item()
			want, kl := directKTO(t, m, a, examples, spec, nil)
			if math.Abs(got-want) > 1e-10 {
				t.Fatalf("objective loss %.15g, direct KTO loss %.15g", got, want)
			}
			if spec.NeedsKL() && !(kl > 1e-3) {
				t.Fatalf("the KL estimate is %g: the check needs one that is not clamped at 0", kl)
			}
			if err := tp.Backward(out.Loss); err != nil {
				t.Fatal(err)
			}
			analytic, move := directional(t, a)
			numeric := func(fixed *float64) float64 {
				const h = 1e-6
				move(h)
				lp, _ := directKTO(t, m, a, examples, spec, fixed)
				move(-2 * h)
				lm, _ := directKTO(t, m, a, examples, spec, fixed)
				move(h)
				return (lp - lm) / (2 * h)
			}
			held := numeric(&kl)
			if math.Abs(held-analytic) > 1e-6*math.Max(1, math.Abs(held)) {
				t.Errorf("directional derivative: objective %.10g, central differences with the KL estimate held %.10g", analytic, held)
			}
			if spec.NeedsKL() {
				if free := numeric(nil); math.Abs(free-analytic) < 1e-3*math.Abs(free) {
					t.Errorf("the objective's directional derivative %.10g is that of the loss whose KL estimate moves with the weights (%.10g): the estimate is not detached (or this batch cannot tell)", analytic, free)
				} else {
					t.Logf("with the KL estimate moving the derivative would be %.8g", free)
				}
			}
			t.Logf("loss %.10f (direct: %.1e off), kl %.6f; directional derivative %.8g (central differences: %.1e relative off)", got, math.Abs(got-want), kl, analytic, math.Abs(held-analytic)/math.Abs(held))
		})
	}
}

// TestKTOUnderCheckpointing: with the decoder blocks recomputed in the
// backward, the reference's and the mismatched rows' forwards before the
// policy's leave the recompute on the adapter: the same loss and
// gradients as without.
func TestKTOUnderCheckpointing(t *testing.T) {
	checkpointingAgrees(t, func() (*nn.Model, *lora.Adapter, *Objective, train.Batch) {
		m, a, obj, b, _, _ := ktoSetup(t, KTOSpec{Beta: 0.7, DesirableWeight: 1.7, UndesirableWeight: 0.6})
		return m, a, obj, b
	})
}

// directional is the directional derivative of the loss whose backward
// has run along a random direction of every adapter weight (from their
// gradients), and a function moving the weights s along that direction.
func directional(t *testing.T, a *lora.Adapter) (float64, func(s float64)) {
	t.Helper()
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
	return analytic, func(s float64) {
		for _, n := range names {
			v := tensor.F64Data(params[n].Value)
			for i, d := range dirs[n] {
				v[i] += s * d
			}
		}
	}
}

// TestKTOLossByHand: the loss, its gradient, the clamp of a negative KL
// estimate at 0 and the figures TRL logs, on numbers worked by hand.
func TestKTOLossByHand(t *testing.T) {
	// Log-ratios d = π − ref: 0.5, −1, 0.2, 0.5; the mismatched rows'
	// differences 0.5, 0.2, 0.1, 0.4: kl = 0.3.
	policy, ref := []float64{-3, -5, -2, -4}, []float64{-3.5, -4, -2.2, -4.5}
	desirable := []bool{true, false, true, false}
	pKL, rKL := []float64{-6, -7, -5, -8}, []float64{-6.5, -7.2, -5.1, -8.4}
	spec := KTOSpec{Beta: 0.5, DesirableWeight: 1.5, UndesirableWeight: 0.5}
	loss, grad, st, err := KTOLoss(spec, policy, ref, desirable, pKL, rKL)
	if err != nil {
		t.Fatal(err)
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	const kl = 0.3
	d := []float64{0.5, -1, 0.2, 0.5}
	want := (1.5*(1-sig(0.5*(0.5-kl))) + 0.5*(1-sig(0.5*(kl+1))) + 1.5*(1-sig(0.5*(0.2-kl))) + 0.5*(1-sig(0.5*(kl-0.5)))) / 4
	if math.Abs(loss-want) > 1e-15 {
		t.Errorf("loss %.17g, want %.17g", loss, want)
	}
	// dσ(x)/dx = σ(x)(1 − σ(x)); a desirable loss falls, an undesirable
	// one rises, with its log-ratio.
	ds := func(x float64) float64 { return sig(x) * (1 - sig(x)) }
	wantG := []float64{-1.5 * 0.5 * ds(0.5*(d[0]-kl)) / 4, 0.5 * 0.5 * ds(0.5*(d[1]-kl)) / 4, -1.5 * 0.5 * ds(0.5*(d[2]-kl)) / 4, 0.5 * 0.5 * ds(0.5*(d[3]-kl)) / 4}
	if !near(grad, wantG, 1e-15) {
		t.Errorf("gradient %v, want %v", grad, wantG)
	}
	m := st.Metrics("val/", true)
	for k, v := range map[string]float64{"val/rewards/chosen": 0.5 * (0.5 + 0.2) / 2, "val/rewards/rejected": 0.5 * (-1 + 0.5) / 2,
		"val/rewards/margins": 0.5*0.7/2 - 0.5*-0.5/2, "val/logps/chosen": -2.5, "val/logps/rejected": -4.5, "val/kl": kl, "val/loss": want} {
		if math.Abs(m[k]-v) > 1e-15 {
			t.Errorf("%s = %g, want %g", k, m[k], v)
		}
	}
	if _, ok := m["val/rewards/accuracies"]; ok || len(m) != 7 {
		t.Errorf("metrics %v: want the seven KTO figures, no accuracies (there are no pairs)", m)
	}
	// A negative estimate is clamped at 0 (TRL's clamp(min=0)).
	l0, _, st0, _ := KTOLoss(spec, policy, ref, desirable, rKL, pKL)
	want0 := (1.5*(1-sig(0.25)) + 0.5*(1-sig(0.5)) + 1.5*(1-sig(0.1)) + 0.5*(1-sig(-0.25))) / 4
	if st0.KL != 0 || math.Abs(l0-want0) > 1e-15 {
		t.Errorf("a negative KL estimate: kl %g, loss %.17g; want 0 and %.17g", st0.KL, l0, want0)
	}
	// apo_zero_unpaired reads no KL estimate.
	apo := KTOSpec{Beta: 0.5, DesirableWeight: 1, UndesirableWeight: 1, LossType: KTOLossAPOZeroUnpaired}
	la, _, sta, err := KTOLoss(apo, policy, ref, desirable, nil, nil)
	wantA := ((1 - sig(0.25)) + sig(-0.5) + (1 - sig(0.1)) + sig(0.25)) / 4
	if err != nil || math.Abs(la-wantA) > 1e-15 || sta.KLBatches != 0 {
		t.Errorf("apo_zero_unpaired: loss %.17g, %v, %d KL batches; want %.17g, none", la, err, sta.KLBatches, wantA)
	}
	// Only desirable examples: no rejected figures, no margin.
	_, _, one, _ := KTOLoss(spec, policy[:1], ref[:1], desirable[:1], pKL[:1], rKL[:1])
	if m := one.Metrics("train/", false); len(m) != 3 || m["train/kl"] != 0.5 {
		t.Errorf("one desirable example: %v", m)
	}
	if l, g, _, err := KTOLoss(spec, []float64{math.NaN(), -2}, []float64{-1, -2}, []bool{true, false}, []float64{-1, -1}, []float64{-1, -1}); err != nil || !math.IsNaN(l) || g[0] != 0 || g[1] != 0 {
		t.Errorf("a NaN log-likelihood: loss %g, gradient %v, %v; want NaN and a zero gradient", l, g, err)
	}
	for _, bad := range []KTOSpec{{Beta: 0, DesirableWeight: 1, UndesirableWeight: 1}, {Beta: 0.1}, {Beta: 0.1, DesirableWeight: -1, UndesirableWeight: 1}, {Beta: 0.1, DesirableWeight: 1, UndesirableWeight: 1, LossType: "bco"}} {
		if _, _, _, err := KTOLoss(bad, policy, ref, desirable, pKL, rKL); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestKTOEvaluate: Evaluate gives the training loss's value and the
// figures TRL logs for KTO (no reward accuracy: there are no pairs).
func TestKTOEvaluate(t *testing.T) {
	spec := KTOSpec{Beta: 0.7, DesirableWeight: 1.7, UndesirableWeight: 0.6}
	m, a, obj, _, l, examples := ktoSetup(t, spec)
	st, err := obj.Evaluate(context.Background(), l, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, kl := directKTO(t, m, a, examples, spec, nil)
	metrics := st.Metrics("val/", true)
	if st.Examples != 5 || st.Chosen != 2 || st.Rejected != 3 || math.Abs(metrics["val/loss"]-want) > 1e-10 || math.Abs(metrics["val/kl"]-kl) > 1e-10 {
		t.Errorf("Evaluate: %+v, metrics %v; want 5 examples (2 desirable), loss %.15g, kl %.15g", st, metrics, want, kl)
	}
	for _, k := range []string{"val/rewards/chosen", "val/rewards/rejected", "val/rewards/margins", "val/logps/chosen", "val/logps/rejected"} {
		if _, ok := metrics[k]; !ok {
			t.Errorf("no %s in %v", k, metrics)
		}
	}
}

// TestUnpairedLoaderLayout: a batch is its examples' rows, then as many
// mismatched rows (each prompt with the previous example's completion,
// the first with the last's, cut to MaxLen), each named; without KL the
// examples alone. MakeUnpaired unpairs pairs and fits the length.
func TestUnpairedLoaderLayout(t *testing.T) {
	examples := []Pair{
		{Prompt: []int32{1, 2}, Chosen: []int32{3}},
		{Prompt: []int32{4}, Rejected: []int32{5, 6, 7}},
		{Prompt: []int32{8, 9, 10}, Chosen: []int32{11, 12}},
	}
	l, err := NewUnpairedLoader(examples, 3, false, 0, true, 5, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	const I = nn.IgnoreIndex
	wantIDs := []int64{
		1, 2, 3, 0, 0,
		4, 5, 6, 7, 0,
		8, 9, 10, 11, 12,
		1, 2, 11, 12, 0, // the last example's completion
		4, 3, 0, 0, 0, // the first's
		8, 9, 10, 5, 6, // the second's, cut to 5 tokens
	}
	wantLabels := []int64{
		I, I, 3, I, I,
		I, 5, 6, 7, I,
		I, I, I, 11, 12,
		I, I, 11, 12, I,
		I, 3, I, I, I,
		I, I, I, 5, 6,
	}
	if got := b.InputIDs.I64(); !slices.Equal(got, wantIDs) {
		t.Errorf("ids %v, want %v", got, wantIDs)
	}
	if got := b.Labels.I64(); !slices.Equal(got, wantLabels) {
		t.Errorf("labels %v, want %v", got, wantLabels)
	}
	if want := []string{RowDesirable, RowUndesirable, RowDesirable, RowMismatched, RowMismatched, RowMismatched}; !slices.Equal(b.Subjects, want) || Examples(b) != 3 {
		t.Errorf("rows named %q (%d examples), want %q", b.Subjects, Examples(b), want)
	}
	if _, err := l.Next(); err != io.EOF {
		t.Errorf("after the epoch: %v", err)
	}
	plain, _ := NewUnpairedLoader(examples, 2, false, 0, false, 0, 0, nil)
	if b, err := plain.Next(); err != nil || b.InputIDs.Dim(0) != 2 || Examples(b) != 2 {
		t.Errorf("without KL: %v rows, %v", b.InputIDs.Shape(), err)
	}

	kept, st, err := MakeUnpaired([]Pair{
		{Prompt: []int32{1}, Chosen: []int32{2, 3}, Rejected: []int32{4}, Source: "p:1"}, // a pair: two examples
		{Prompt: []int32{1, 2, 3, 4}, Rejected: []int32{5, 6}, Source: "p:2"},            // cut to 1 token
		{Prompt: []int32{1, 2, 3, 4, 5}, Chosen: []int32{6}, Source: "p:3"},              // no room: dropped
	}, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pair{
		{Prompt: []int32{1}, Chosen: []int32{2, 3}, Source: "p:1"},
		{Prompt: []int32{1}, Rejected: []int32{4}, Source: "p:1"},
		{Prompt: []int32{1, 2, 3, 4}, Rejected: []int32{5}, Source: "p:2"},
	}
	if len(kept) != 3 || st != (TruncStats{Kept: 3, Truncated: 1, Dropped: 1}) {
		t.Fatalf("kept %+v, %+v", kept, st)
	}
	for i := range want {
		if !slices.Equal(kept[i].Prompt, want[i].Prompt) || !slices.Equal(kept[i].Chosen, want[i].Chosen) || !slices.Equal(kept[i].Rejected, want[i].Rejected) || (kept[i].Chosen == nil) != (want[i].Chosen == nil) {
			t.Errorf("example %d: %+v, want %+v", i, kept[i], want[i])
		}
	}
	if _, _, err := MakeUnpaired([]Pair{{Prompt: []int32{1}, Chosen: []int32{}, Source: "p:9"}}, 0); err == nil || !strings.Contains(err.Error(), "p:9: the completion is empty") {
		t.Errorf("an empty completion: %v", err)
	}
}
