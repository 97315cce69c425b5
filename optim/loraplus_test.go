package optim

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// loraPlusParams are a LoRA layer with DoRA and a modules_to_save copy
// with a bias, as ftune names them, and their dimensions.
var loraPlusParams = map[string]int{
	"q_proj.lora_A.weight":         2,
	"q_proj.lora_B.weight":         2,
	"q_proj.lora_magnitude_vector": 1,
	"lm_head.weight":               2,
	"lm_head.bias":                 1,
}

func TestLoRAPlusGroups(t *testing.T) {
	scale := LoRAPlusScale(16, loraPlusParams)
	// PEFT's groups: lora_B and every 1-D parameter at lr × ratio.
	want := map[string]float64{"q_proj.lora_A.weight": 1, "q_proj.lora_B.weight": 16, "q_proj.lora_magnitude_vector": 16, "lm_head.weight": 1, "lm_head.bias": 16}
	for name, w := range want {
		if got := scale(name); got != w {
			t.Errorf("%s: scale %g, want %g", name, got, w)
		}
	}
	// Per-subject adapters prefix the subject.
	if got := LoRAPlusScale(16, map[string]int{"chemistry/q_proj.lora_B.weight": 2})("chemistry/q_proj.lora_B.weight"); got != 16 {
		t.Errorf("per-subject lora_B: scale %g, want 16", got)
	}
	if LoRAPlusScale(0, loraPlusParams) != nil {
		t.Error("ratio 0 (off) gives a scale")
	}
}

// TestLoRAPlusStep: steps with LoRA+ ratio 16 move each parameter of the
// B groups exactly as the same optimizer at lr × 16 does, and the others
// exactly as at lr (16 is a power of two: lr × 16 rounds the same either
// way, so the comparison is bit for bit), with weight decay, whose
// decoupled form follows the scaled rate, and a changed learning rate (a
// schedule's).
func TestLoRAPlusStep(t *testing.T) {
	type stepper interface {
		SetLR(float64)
		Step([]Param) error
	}
	const lr, ratio = 1e-3, 16
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range loraPlusParams {
			if !yield(n) {
				return
			}
		}
	})
	rng := rand.New(rand.NewPCG(1, 2))
	data, grads := map[string][]float32{}, map[string][][]float32{}
	for _, n := range names {
		for range 5 {
			data[n] = append(data[n], rng.Float32()-0.5)
		}
		for range 2 { // two steps
			g := make([]float32, 5)
			for i := range g {
				g[i] = rng.Float32() - 0.5
			}
			grads[n] = append(grads[n], g)
		}
	}
	run := func(newOpt func(lr float64) stepper, lr float64, only func(string) bool) map[string][]float32 {
		opt := newOpt(lr)
		out := map[string][]float32{}
		for _, n := range names {
			out[n] = slices.Clone(data[n])
		}
		for step := range 2 {
			opt.SetLR(lr * []float64{1, 0.5}[step])
			var ps []Param
			for _, n := range names {
				if only(n) {
					ps = append(ps, Param{Name: n, Data: out[n], Grad: grads[n][step]})
				}
			}
			if err := opt.Step(ps); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	all := func(string) bool { return true }
	isB := func(n string) bool { return LoRAPlusB(n, loraPlusParams[n]) }
	notB := func(n string) bool { return !isB(n) }
	scale := LoRAPlusScale(ratio, loraPlusParams)
	for _, kind := range []string{"adamw", "sgd"} {
		newOpt := func(s func(string) float64) func(float64) stepper {
			return func(lr float64) stepper {
				if kind == "sgd" {
					o, _ := NewSGD(SGDConfig{LR: lr, Momentum: 0.9, WeightDecay: 0.01, NoDecay: DefaultNoDecay, LRScale: s})
					return o
				}
				o, _ := NewAdamW(AdamWConfig{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, NoDecay: DefaultNoDecay, LRScale: s})
				return o
			}
		}
		got := run(newOpt(scale), lr, all)
		atB := run(newOpt(nil), lr*ratio, isB)
		atA := run(newOpt(nil), lr, notB)
		for _, n := range names {
			want := atA[n]
			if isB(n) {
				want = atB[n]
			}
			if !slices.Equal(got[n], want) {
				t.Errorf("%s %s: LoRA+ step gave %v, want %v (lr × %g: %v)", kind, n, got[n], want, scale(n), isB(n))
			}
			if slices.Equal(got[n], data[n]) {
				t.Errorf("%s %s did not move", kind, n)
			}
		}
		// And B's update differs from a plain step's: the scale acts.
		plain := run(newOpt(nil), lr, all)
		if slices.Equal(plain["q_proj.lora_B.weight"], got["q_proj.lora_B.weight"]) {
			t.Errorf("%s: lora_B moved as without LoRA+", kind)
		}
	}
}
