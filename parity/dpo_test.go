package parity

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/dpo"
)

// dpoFixture is testdata/fixtures/llama-tiny-dpo (make_dpo_fixture.py):
// TRL's sigmoid DPO loss through PEFT on llama-tiny with its adapter_init.
const dpoFixture = "../testdata/fixtures/llama-tiny-dpo"

type dpoMeta struct {
	Base           string    `json:"base"`
	Beta           float64   `json:"beta"`
	AdamW          adamwMeta `json:"adamw"`
	AdamWLosses    []float64 `json:"adamw_losses"`
	AdamWLossesF64 []float64 `json:"adamw_losses_f64"`
}

type adamwMeta struct {
	LR          float64    `json:"lr"`
	Betas       [2]float64 `json:"betas"`
	Eps         float64    `json:"eps"`
	WeightDecay float64    `json:"weight_decay"`
}

// dpoSetup loads llama-tiny on be with adapter_init attached, the DPO
// objective (the reference: the adapter detached) and the fixture's
// pairs: a loader of them (one batch an epoch) and that batch.
func dpoSetup(t *testing.T, be tensor.Backend, dt tensor.DType) (*nn.Model, *lora.Adapter, *dpo.Objective, train.Batch, *dpo.Loader, dpoMeta, *safetensors.File) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dpoFixture, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta dpoMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	// the base folder's model with its adapter_init (meta.json's adapter)
	m, a, _ := loraSetupAs(t, filepath.Join(filepath.Dir(dpoFixture), meta.Base), func(*nn.Model) nn.Batch { return nn.Batch{} }, be, dt)
	f, err := safetensors.Open(filepath.Join(dpoFixture, "dpo.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	// The fixture's rows as pairs, batched by dpo.Loader: it must give
	// TRL's collated batch back (the chosen rows, then the rejected,
	// right-padded with 0, labels on the completions only).
	ids, shape := ints(t, f, "input_ids")
	mask, _ := ints(t, f, "attention_mask")
	completion, _ := ints(t, f, "completion_mask")
	rows, T := shape[0], shape[1]
	split := func(r int) (prompt, comp []int32) {
		for t := 0; t < T; t++ {
			switch i := r*T + t; {
			case mask[i] == 0:
			case completion[i] == 1:
				comp = append(comp, int32(ids[i]))
			default:
				prompt = append(prompt, int32(ids[i]))
			}
		}
		return prompt, comp
	}
	pairs := make([]dpo.Pair, rows/2)
	for i := range pairs {
		p, c := split(i)
		p2, r := split(rows/2 + i)
		if !slices.Equal(p, p2) {
			t.Fatalf("fixture pair %d: the rejected row's prompt differs from the chosen row's", i)
		}
		pairs[i] = dpo.Pair{Prompt: p, Chosen: c, Rejected: r}
	}
	l, err := dpo.NewLoader(pairs, len(pairs), false, 0, 0, be)
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Next()
	if err != nil {
		t.Fatal(err)
	}
	l.StartEpoch(0)
	labels := make([]int64, len(ids))
	for i := range ids {
		labels[i] = nn.IgnoreIndex
		if completion[i] == 1 {
			labels[i] = ids[i]
		}
	}
	if !slices.Equal(b.InputIDs.I64(), ids) || !slices.Equal(b.Labels.I64(), labels) || !slices.Equal(b.InputIDs.Shape(), tensor.Shape(shape)) {
		t.Fatalf("dpo.Loader's batch is not the fixture's (TRL's collator's): ids %v, labels %v", b.InputIDs.I64(), b.Labels.I64())
	}
	obj := &dpo.Objective{Model: m, Spec: dpo.Spec{Beta: meta.Beta}, Reference: dpo.AdapterOff(m, a)}
	return m, a, obj, b, l, meta, f
}

// sequenceLogps sums each row's completion-token log-probabilities from
// the model's per-token losses (nn.ForwardOptions.RowLosses).
func sequenceLogps(t *testing.T, m *nn.Model, b train.Batch) []float64 {
	t.Helper()
	out, err := m.Forward(nil, b.Batch, nn.ForwardOptions{RowLosses: true})
	if err != nil {
		t.Fatal(err)
	}
	rows, T := b.InputIDs.Dim(0), b.InputIDs.Dim(1)
	nll := out.RowLoss.Value.F64()
	sums := make([]float64, rows)
	for i := range rows {
		for _, v := range nll[i*T : (i+1)*T] {
			sums[i] -= v
		}
	}
	return sums
}

// TestDPOParity checks ftune's DPO against TRL's loss through PEFT
// (llama-tiny-dpo): the policy's and the reference's sequence
// log-likelihoods, the loss, every LoRA gradient, and five AdamW steps on
// the DPO loss. Tolerances as TestParity's (float32 against float32):
// activations and the loss 1e-4 relative, gradients 1e-3, the AdamW
// losses 1e-4 absolute from the float64 trajectory plus twice float32's
// distance from it.
func TestDPOParity(t *testing.T) {
	runDPOParity(t, nil, 0, dpoBounds{tolActivations, tolActivations, tolGrad}, true)
}

// dpoBounds are a path's bounds: on the sequence log-likelihoods, on the
// loss and on the worst LoRA gradient tensor (relative).
type dpoBounds struct{ logps, loss, grad float64 }

// runDPOParity checks on be (nil: the CPU) with the model computing in dt
// (0: float32); adamw runs the AdamW steps (host parameters: the CPU).
func runDPOParity(t *testing.T, be tensor.Backend, dt tensor.DType, tol dpoBounds, adamw bool) {
	m, a, obj, b, _, meta, f := dpoSetup(t, be, dt)
	wantPolicy, wantRef := floats(t, f, "logps"), floats(t, f, "ref_logps")
	report(t, "policy log-likelihoods", testutil.RelFrobenius(sequenceLogps(t, m, b), wantPolicy), tol.logps)
	lora.Detach(m)
	report(t, "reference log-likelihoods", testutil.RelFrobenius(sequenceLogps(t, m, b), wantRef), tol.logps)
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}

	tp := autograd.NewTape()
	out, err := obj.Forward(tp, b, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	report(t, "DPO loss", testutil.RelFrobenius([]float64{out.Loss.Value.Item()}, floats(t, f, "loss")), tol.loss)
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	grads, err := safetensors.Open(filepath.Join(dpoFixture, "grads_lora.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer grads.Close()
	params := a.Params()
	worst, n := 0.0, 0
	for _, key := range grads.Names() {
		name, _ := lora.InMemoryName(key)
		p, ok := params[name]
		if !ok {
			t.Fatalf("the fixture's gradient %s has no ftune parameter (%s)", key, name)
		}
		if p.Grad == nil {
			t.Fatalf("%s: no gradient", name)
		}
		worst = max(worst, testutil.RelFrobenius(p.Grad.F64(), floats(t, grads, key)))
		n++
	}
	if n != len(params) {
		t.Errorf("the fixture has %d LoRA gradients, ftune %d parameters", n, len(params))
	}
	report(t, "LoRA gradients (worst tensor)", worst, tol.grad)
	for _, v := range params {
		v.ZeroGrad()
	}
	if !adamw {
		return
	}

	opt, err := optim.NewAdamW(optim.AdamWConfig{LR: meta.AdamW.LR, Beta1: meta.AdamW.Betas[0], Beta2: meta.AdamW.Betas[1], Eps: meta.AdamW.Eps, WeightDecay: meta.AdamW.WeightDecay})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.AdamWLosses) == 0 || len(meta.AdamWLossesF64) != len(meta.AdamWLosses) {
		t.Fatalf("meta.json: %d AdamW losses, %d in float64", len(meta.AdamWLosses), len(meta.AdamWLossesF64))
	}
	for step, want32 := range meta.AdamWLosses {
		want := meta.AdamWLossesF64[step]
		tol := tolAdamWLoss + 2*abs(want32-want)
		tp := autograd.NewTape()
		out, err := obj.Forward(tp, b, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := out.Loss.Value.Item()
		t.Logf("AdamW step %d: DPO loss %.7f, TRL's in float64 %.7f (float32 %.7f; tolerance %.3g)", step, got, want, want32, tol)
		if abs(got-want) > tol {
			t.Errorf("AdamW step %d: DPO loss %.7f, TRL's in float64 %.7f (tolerance %.3g)", step, got, want, tol)
		}
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		ps := a.Params()
		if err := opt.Step(bindParams(ps)); err != nil {
			t.Fatal(err)
		}
		for _, v := range ps {
			v.ZeroGrad()
		}
	}
}

// TestDPOParityCUDA is TestDPOParity on the GPU: float32 mode at the CPU's
// bounds (every op rounds as float32 code does), then the training
// default, bf16 activations with bf16 tensor-core products, at
// TestParityCUDABF16Activations' bound of 4e-2 on the log-likelihoods, the
// loss and the gradients. Measured under ptxsim (2026-12-06): log-
// likelihoods 4.5e-4, loss 6.7e-4, worst LoRA gradient 1.8e-2.
func TestDPOParityCUDA(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	t.Run("f32", func(t *testing.T) {
		be, err := cudabackend.Open(cudabackend.Options{})
		if err != nil {
			t.Fatal(err)
		}
		runDPOParity(t, be, 0, dpoBounds{tolActivations, tolActivations, tolGrad}, false)
		// The trainer's steps on the device: its AdamW, the loss read
		// with the gradient norm.
		dpoTrainerTrajectory(t, be)
	})
	t.Run("bf16 activations", func(t *testing.T) {
		be, err := cudabackend.Open(cudabackend.Options{BF16MatMul: true})
		if err != nil {
			t.Fatal(err)
		}
		runDPOParity(t, be, tensor.BF16, dpoBounds{4e-2, 4e-2, 4e-2}, false)
	})
}

// dpoTrainerTrajectory trains the fixture's batch for the fixture's AdamW
// steps through train.Trainer with the DPO objective, as `ftune train`
// does (on a GPU: the device AdamW, the loss read with the gradient norm),
// and checks each step's loss against TRL's float64 trajectory (bound as
// TestDPOParity's).
func dpoTrainerTrajectory(t *testing.T, be tensor.Backend) {
	_, a, obj, _, l, meta, _ := dpoSetup(t, be, 0)
	opt, err := optim.NewAdamW(optim.AdamWConfig{LR: meta.AdamW.LR, Beta1: meta.AdamW.Betas[0], Beta2: meta.AdamW.Betas[1], Eps: meta.AdamW.Eps, WeightDecay: meta.AdamW.WeightDecay})
	if err != nil {
		t.Fatal(err)
	}
	tr := &train.Trainer{Model: obj.Model, Params: a.Params(), Opt: opt, Train: l, Forward: obj.Forward,
		Callbacks: []train.Callback{obj},
		Cfg:       train.Config{MaxSteps: len(meta.AdamWLosses), GradAccum: 1, LR: meta.AdamW.LR}}
	if err := tr.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("optimizer path: %s", tr.OptimizerPath())
	if len(tr.State.Losses) != len(meta.AdamWLosses) {
		t.Fatalf("%d steps, want %d", len(tr.State.Losses), len(meta.AdamWLosses))
	}
	for step, got := range tr.State.Losses {
		want := meta.AdamWLossesF64[step]
		tol := tolAdamWLoss + 2*abs(meta.AdamWLosses[step]-want)
		if abs(got-want) > tol {
			t.Errorf("trainer step %d: DPO loss %.7f, TRL's in float64 %.7f (tolerance %.3g)", step, got, want, tol)
		}
	}
	t.Logf("trainer's DPO losses %v (TRL float64 %v)", tr.State.Losses, meta.AdamWLossesF64)
}

// TestDPOTrainerMatchesTRL: the trainer's DPO steps follow TRL's AdamW
// trajectory on the CPU.
func TestDPOTrainerMatchesTRL(t *testing.T) {
	dpoTrainerTrajectory(t, nil)
}
