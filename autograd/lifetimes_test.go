package autograd

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// lifetimeModel is a two-block Llama-like stack in float32: RMSNorm,
// attention over a reshaped projection, SwiGLU MLP with a residual, a
// trainable low-rank update, a view of a parameter used as an operand, and
// a squared-logit loss.
type lifetimeModel struct {
	x                        *Var // input [N,D], made before the tape
	norm, wq, wo, wg, wu, wd *Var // frozen
	a, b, head, bias         *Var // trainable
	da, db                   *Var // trainable: the down projection's LoRA
	cos, sin                 *tensor.Tensor
	B, T, H, Dh, D, F, Out   int
	// inPlace writes RoPE over the query projection and the residual sums
	// over the attention's output projection and the MLP's output
	// (RoPEInPlace, AddRMSNormInPlace, AddInPlace).
	inPlace bool
	// forget hands the SwiGLU activation to Tape.Forget once the down
	// projection has read it.
	forget bool
	// forwardEnd, when set, is called between the forward and Backward.
	forwardEnd func()
}

func newLifetimeModel(be tensor.Backend) *lifetimeModel {
	r := rand.New(rand.NewPCG(3, 9))
	m := &lifetimeModel{B: 2, T: 6, H: 2, Dh: 4, F: 12, Out: 5}
	m.D = m.H * m.Dh
	rnd := func(shape ...int) *tensor.Tensor {
		d := make([]float32, tensor.Shape(shape).Numel())
		for i := range d {
			d[i] = float32(r.NormFloat64() * 0.5)
		}
		return tensor.FromHost(be, tensor.F32, d, shape...)
	}
	N := m.B * m.T
	m.x = Const(rnd(N, m.D))
	m.norm = Frozen(rnd(m.D), "norm")
	m.wq, m.wo, m.wg, m.wu, m.wd = Frozen(rnd(m.D, m.D), "wq"), Frozen(rnd(m.D, m.D), "wo"), Frozen(rnd(m.F, m.D), "wg"), Frozen(rnd(m.F, m.D), "wu"), Frozen(rnd(m.D, m.F), "wd")
	m.a, m.b = Param(rnd(2, m.D), "lora_a"), Param(rnd(m.F, 2), "lora_b")
	m.da, m.db = Param(rnd(2, m.F), "down_lora_a"), Param(rnd(m.D, 2), "down_lora_b")
	m.head = Param(rnd(m.Out, m.D), "head")
	m.bias = Param(rnd(m.Out*1), "bias")
	m.cos, m.sin = rnd(m.B, m.T, m.Dh/2), rnd(m.B, m.T, m.Dh/2)
	return m
}

func (m *lifetimeModel) params() []*Var { return []*Var{m.a, m.b, m.da, m.db, m.head, m.bias} }

func (m *lifetimeModel) block(tp *Tape, in []*Var) []*Var {
	h := in[0]
	n := tp.RMSNorm(h, m.norm, 1e-5)
	q := tp.Reshape(tp.Linear(n, m.wq, nil), m.B, m.T, m.H, m.Dh)
	if m.inPlace {
		q = tp.RoPEInPlace(q, m.cos, m.sin)
	} else {
		q = tp.RoPE(q, m.cos, m.sin)
	}
	att := tp.Reshape(tp.Attention(q, q, q, tensor.AttentionParams{Scale: 0.5, Causal: true}), m.B*m.T, m.D)
	att = tp.Linear(att, m.wo, nil)
	if m.inPlace {
		h, n = tp.AddRMSNormInPlace(att, h, m.norm, 1e-5)
	} else {
		h = tp.Add(h, att)
		n = tp.RMSNorm(h, m.norm, 1e-5)
	}
	gate := tp.Add(tp.Linear(n, m.wg, nil), tp.Linear(tp.Linear(n, m.a, nil), m.b, nil))
	s := tp.SwiGLU(gate, tp.Linear(n, m.wu, nil))
	down := tp.LoRALinear(s, m.wd, nil, m.da, m.db, 0.5, nil)
	if m.forget {
		tp.Forget(s)
	}
	if m.inPlace {
		return []*Var{tp.AddInPlace(down, h)}
	}
	return []*Var{tp.Add(h, down)}
}

// step runs forward and backward and returns the loss, the logits (kept
// for reading after Backward) and the gradients.
func (m *lifetimeModel) step(t *testing.T, release, ckpt bool) (loss float64, logits []float32, grads [][]float32, tp *Tape) {
	t.Helper()
	for _, p := range m.params() {
		p.ZeroGrad()
	}
	tp = NewTape()
	tp.ReleaseActivations = release
	h := m.x
	for range 2 {
		if ckpt {
			h = tp.Checkpoint(m.block, h)[0]
		} else {
			h = m.block(tp, []*Var{h})[0]
		}
	}
	// The bias enters through a view of the parameter (a recorded node
	// whose output shares the parameter's storage).
	bias := tp.Reshape(m.bias, 1, m.Out)
	out := tp.Add(tp.Linear(h, m.head, nil), bias)
	tp.Keep(out)
	l := tp.MeanAll(tp.Square(out))
	if m.forwardEnd != nil {
		m.forwardEnd()
	}
	if err := tp.Backward(l); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.params() {
		grads = append(grads, p.Grad.F32())
	}
	return l.Value.Item(), out.Value.F32(), grads, tp
}

func TestReleaseActivationsLowersPeakAndKeepsResults(t *testing.T) {
	for _, ckpt := range []bool{false, true} {
		base := backendtest.NewCounting()
		m := newLifetimeModel(base)
		start := base.Live()
		wantLoss, wantLogits, wantGrads, _ := m.step(t, false, ckpt)
		peakOff := base.Peak() - start

		rel := backendtest.NewCounting()
		m = newLifetimeModel(rel)
		start = rel.Live()
		loss, logits, grads, tp := m.step(t, true, ckpt)
		peakOn := rel.Peak() - start

		if loss != wantLoss || !slices.Equal(logits, wantLogits) {
			t.Errorf("ckpt=%v: loss %v logits %v with release, want %v %v (bit for bit)", ckpt, loss, logits, wantLoss, wantLogits)
		}
		for i := range grads {
			if !slices.Equal(grads[i], wantGrads[i]) {
				t.Errorf("ckpt=%v: gradient of %s changed with release (a poisoned buffer was read):\n got %v\nwant %v", ckpt, m.params()[i].Name, grads[i], wantGrads[i])
			}
		}
		st := tp.Released()
		if st.Storages == 0 {
			t.Fatalf("ckpt=%v: nothing released", ckpt)
		}
		// Releasing every block's activations as the backward passes them
		// must cut the step's peak: without it, all of them are live at
		// once at the start of the backward.
		if peakOn >= peakOff*9/10 {
			t.Errorf("ckpt=%v: peak live bytes %d with release, %d without: want at least 10%% lower", ckpt, peakOn, peakOff)
		}
		t.Logf("ckpt=%v: peak live %d B -> %d B, %d storages (%d B) released", ckpt, peakOff, peakOn, st.Storages, st.Bytes)
	}
}

func TestReleaseActivationsNeverFreesWhatOutlivesTheStep(t *testing.T) {
	be := backendtest.NewCounting()
	m := newLifetimeModel(be)
	tp := NewTape()
	tp.ReleaseActivations = true
	h := m.block(tp, []*Var{m.x})[0]
	view := tp.Reshape(m.bias, 1, m.Out) // output sharing a parameter's storage
	// A parameter made after the tape began (allocated later than its
	// mark): only pinning the leaves an op sees keeps its view alive.
	late := Param(tensor.FromHost(be, tensor.F32, []float32{0.5, -1, 2, 0.25, 1}, m.Out), "late")
	lateView := tp.Reshape(late, 1, m.Out)
	logits := tp.Add(tp.Add(tp.Linear(h, m.head, nil), view), lateView)
	tp.Keep(logits)
	loss := tp.MeanAll(tp.Square(logits))
	hidden := tp.Scale(h, 1) // an activation the caller did not keep
	loss = tp.Add(loss, tp.MeanAll(hidden))
	// The caller keeps a view (a Narrow) of another activation: the whole
	// storage the view shares must survive.
	second := tp.Scale(h, 2)
	part := tp.Narrow(second, 0, 1, 3)
	tp.Keep(part)
	loss = tp.Add(loss, tp.MeanAll(part))
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]*Var{"loss": loss, "logits (kept)": logits, "bias view": view, "late parameter's view": lateView, "input": m.x} {
		if be.Released(v.Value) {
			t.Errorf("%s was released", name)
		}
	}
	for _, p := range append(m.params(), m.norm, m.wq, m.wg, m.wu, m.wd, late) {
		if be.Released(p.Value) || (p.Grad != nil && be.Released(p.Grad)) {
			t.Errorf("parameter %s (or its gradient) was released", p.Name)
		}
	}
	if be.Released(second.Value) || math.IsNaN(float64(part.Value.F32()[0])) {
		t.Error("the storage under a kept view was released")
	}
	if !be.Released(hidden.Value) || !be.Released(h.Value) {
		t.Error("activations used by no later node were not released")
	}
	if v := logits.Value.F32(); math.IsNaN(float64(v[0])) {
		t.Error("kept logits read NaN after Backward")
	}
}

// The CPU releases too (its storages go to the pool while a trainer holds
// it): the same loss bit for bit, with the activations given back.
func TestReleaseActivationsOnTheCPU(t *testing.T) {
	m := newLifetimeModel(cpu)
	want, _, _, _ := m.step(t, false, false)
	got, _, _, tp := m.step(t, true, false)
	if math.Float64bits(got) != math.Float64bits(want) || tp.Released().Storages == 0 {
		t.Errorf("CPU: loss %v (released %+v), want %v and activations released", got, tp.Released(), want)
	}
}

// A bf16 gradient for a float32 parameter (LoRA's dA with bf16 activations)
// is widened into a copy; the bf16 product is then dead and, when the
// caller handed it over (fresh), goes back at once instead of waiting for
// Go's collector. One the caller still holds is never released.
func TestWidenedGradientIsGivenBack(t *testing.T) {
	be := backendtest.NewCounting()
	p := Param(tensor.Zeros(be, tensor.F32, 4), "master")
	tp := NewTape()
	tp.ReleaseActivations = true
	fresh := tensor.Full(be, tensor.BF16, 0.5, 4)
	tp.accumulate(p, fresh, true)
	if !be.Released(fresh) {
		t.Error("the bf16 gradient handed over was not released once widened")
	}
	held := tensor.Full(be, tensor.BF16, 0.25, 4)
	tp.accumulate(p, held, false)
	if be.Released(held) {
		t.Error("a bf16 gradient the caller still holds was released")
	}
	if p.Grad.DType() != tensor.F32 || !slices.Equal(p.Grad.F32(), []float32{0.75, 0.75, 0.75, 0.75}) {
		t.Errorf("gradient %v %v, want float32 0.75s", p.Grad.DType(), p.Grad.F32())
	}
}
