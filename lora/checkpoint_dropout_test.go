package lora

import (
	"bytes"
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// stepResult is one training step: its loss, every adapter gradient (by
// adapter/parameter) and every dropout stream after the step.
type stepResult struct {
	loss  float64
	grads map[string][]float32
	rng   map[string][]byte
}

// dropoutStep runs one forward and backward from the adapters' saved
// dropout streams start, with or without gradient checkpointing.
func dropoutStep(t *testing.T, m *nn.Model, adapters []*Adapter, start []map[string][]byte, ckpt bool,
	forward func(*autograd.Tape) (nn.Output, error)) stepResult {
	t.Helper()
	m.Checkpointing = ckpt
	defer func() { m.Checkpointing = false }()
	for i, a := range adapters {
		if err := a.LoadRNG(start[i]); err != nil {
			t.Fatal(err)
		}
		for _, p := range a.Params() {
			p.ZeroGrad()
		}
	}
	tp := autograd.NewTape()
	out, err := forward(tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	r := stepResult{loss: out.Loss.Value.Item(), grads: map[string][]float32{}, rng: map[string][]byte{}}
	for _, a := range adapters {
		for k, p := range a.Params() {
			if p.Grad != nil {
				r.grads[a.Name+"/"+k] = p.Grad.F32()
			}
		}
		st, err := a.SaveRNG()
		if err != nil {
			t.Fatal(err)
		}
		for k, b := range st {
			r.rng[a.Name+"/"+k] = b
		}
	}
	return r
}

// dropoutBatch is a fixed two-row batch with labels.
func dropoutBatch(m *nn.Model) nn.Batch {
	const B, T = 2, 9
	ids := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64((i*53 + 7) % m.Config.VocabSize)
	}
	return nn.Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, B, T), Labels: tensor.FromHost(m.Backend, tensor.I64, ids, B, T)}
}

// TestCheckpointedDropoutMatchesPlainStep: with LoRA dropout on, a step
// with gradient checkpointing computes what a step without it computes —
// the same loss (dropout applied in the block's first forward), the same
// adapter gradients (the recompute draws the same masks) and the same
// dropout streams afterwards (so a resumed run draws what an uninterrupted
// one would) — for plain LoRA, DoRA (its own dropout path) and per-subject
// adapters routed by row (several streams; the adapters are swapped out
// again before the backward recomputes the blocks).
//
// Bit for bit, not within a tolerance: the first forward runs the same ops
// on the same values with the same masks, the recompute repeats them
// exactly (the CPU kernels are deterministic for a given shape), and the
// backward runs the same nodes in the same order, so no sum is
// reassociated.
func TestCheckpointedDropoutMatchesPlainStep(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, m *nn.Model) ([]*Adapter, func(*autograd.Tape) (nn.Output, error))
	}{
		{"lora", func(t *testing.T, m *nn.Model) ([]*Adapter, func(*autograd.Tape) (nn.Output, error)) {
			a := randomAdapter(t, m, "default", 3)
			return []*Adapter{a}, attached(t, m, a)
		}},
		{"dora", func(t *testing.T, m *nn.Model) ([]*Adapter, func(*autograd.Tape) (nn.Output, error)) {
			a := doraAdapter(t, m, true)
			return []*Adapter{a}, attached(t, m, a)
		}},
		{"per-subject routed", func(t *testing.T, m *nn.Model) ([]*Adapter, func(*autograd.Tape) (nn.Output, error)) {
			s := NewSubjectAdapterModel(m)
			var as []*Adapter
			for i, name := range []string{"chemistry", "geography"} {
				a := randomAdapter(t, m, name, uint64(i+1))
				if err := s.Add(a); err != nil {
					t.Fatal(err)
				}
				as = append(as, a)
			}
			b := dropoutBatch(m)
			return as, func(tp *autograd.Tape) (nn.Output, error) {
				return s.ForwardRouted(tp, b, []string{"geography", "chemistry"}, nn.ForwardOptions{})
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := loadFixture(t, nn.LoadOptions{})
			adapters, forward := tc.setup(t, m)
			setDropout(adapters, 0.3)
			start := make([]map[string][]byte, len(adapters))
			for i, a := range adapters {
				var err error
				if start[i], err = a.SaveRNG(); err != nil {
					t.Fatal(err)
				}
			}
			plain := dropoutStep(t, m, adapters, start, false, forward)
			ckpt := dropoutStep(t, m, adapters, start, true, forward)
			setDropout(adapters, 0)
			noDropout := dropoutStep(t, m, adapters, start, false, forward)
			setDropout(adapters, 0.3)

			if plain.loss == noDropout.loss {
				t.Fatalf("dropout 0.3 left the loss at %v: the test cannot see dropout", plain.loss)
			}
			if ckpt.loss != plain.loss {
				t.Errorf("loss %v with checkpointing, %v without (%v without dropout)", ckpt.loss, plain.loss, noDropout.loss)
			}
			if len(plain.grads) == 0 {
				t.Fatal("no adapter gradient")
			}
			for _, k := range slices.Sorted(maps.Keys(plain.grads)) {
				got, ok := ckpt.grads[k]
				if !ok {
					t.Errorf("%s: no gradient with checkpointing", k)
					continue
				}
				if i := firstDiff(got, plain.grads[k]); i >= 0 {
					t.Errorf("%s: gradient differs at %d with checkpointing: %v, want %v (largest gradient %v)", k, i, got[i], plain.grads[k][i], maxAbs(plain.grads[k]))
				}
			}
			for _, k := range slices.Sorted(maps.Keys(plain.rng)) {
				if bytes.Equal(plain.rng[k], noDropout.rng[k]) {
					t.Errorf("%s: the step drew nothing from the dropout stream", k)
				}
				if !bytes.Equal(ckpt.rng[k], plain.rng[k]) {
					t.Errorf("%s: dropout stream ends in another state with checkpointing", k)
				}
			}
		})
	}
}

// TestInferenceUnderCheckpointingHasNoDropout: evaluation and generation
// (a nil tape) never apply dropout nor draw from its streams, with gradient
// checkpointing on or off.
func TestInferenceUnderCheckpointingHasNoDropout(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	a := randomAdapter(t, m, "default", 3)
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	want := logitsOf(t, m)
	setDropout([]*Adapter{a}, 0.5)
	before, err := a.SaveRNG()
	if err != nil {
		t.Fatal(err)
	}
	for _, ckpt := range []bool{false, true} {
		m.Checkpointing = ckpt
		got := logitsOf(t, m)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("checkpointing %v: inference logit %d is %v with dropout 0.5, %v without", ckpt, i, got[i], want[i])
			}
		}
		after, err := a.SaveRNG()
		if err != nil {
			t.Fatal(err)
		}
		for k := range before {
			if !bytes.Equal(before[k], after[k]) {
				t.Fatalf("checkpointing %v: inference drew from the dropout stream of %s", ckpt, k)
			}
		}
	}
}

func attached(t *testing.T, m *nn.Model, a *Adapter) func(*autograd.Tape) (nn.Output, error) {
	t.Helper()
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	b := dropoutBatch(m)
	return func(tp *autograd.Tape) (nn.Output, error) { return m.Forward(tp, b, nn.ForwardOptions{}) }
}

func setDropout(adapters []*Adapter, p float64) {
	for _, a := range adapters {
		for _, l := range a.Layers {
			l.Dropout = p
		}
	}
}

func firstDiff(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}
