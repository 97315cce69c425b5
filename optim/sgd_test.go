package optim

import (
	"math"
	"slices"
	"testing"
)

// TestSGDHand checks torch.optim.SGD's update on f(p) = p² (g = 2p), p = 1,
// lr 0.1, weight decay 0.01, derived by hand:
//
// momentum 0.9, dampening 0.1:
//
//	step 1: d = 2 + 0.01·1 = 2.01; buf = d (first step, no dampening); p = 1 - 0.201 = 0.799
//	step 2: g = 1.598; d = 1.598 + 0.00799 = 1.60599; buf = 0.9·2.01 + 0.9·1.60599 = 3.254391;
//	        p = 0.799 - 0.3254391 = 0.4735609
//
// Nesterov, momentum 0.9, dampening 0:
//
//	step 1: d = 2.01; buf = 2.01; d = 2.01 + 0.9·2.01 = 3.819; p = 0.6181
//	step 2: g = 1.2362; d = 1.242381; buf = 0.9·2.01 + 1.242381 = 3.051381;
//	        d = 1.242381 + 0.9·3.051381 = 3.9886239; p = 0.21923761
//
// plain (no momentum): p = 1 - 0.1·2.01 = 0.799, then 0.799 - 0.1·1.60599 = 0.638401.
func TestSGDHand(t *testing.T) {
	cases := []struct {
		name string
		cfg  SGDConfig
		want [2]float64
	}{
		{"momentum+dampening", SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01}, [2]float64{0.799, 0.4735609}},
		{"nesterov", SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01}, [2]float64{0.6181, 0.21923761}},
		{"plain", SGDConfig{LR: 0.1, WeightDecay: 0.01}, [2]float64{0.799, 0.638401}},
	}
	for _, c := range cases {
		opt, err := NewSGD(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := []float32{1}
		g := []float32{0}
		for step := 0; step < 2; step++ {
			g[0] = 2 * p[0]
			gBefore := g[0]
			if err := opt.Step([]Param{{Name: "p", Data: p, Grad: g}}); err != nil {
				t.Fatal(err)
			}
			// float32 arithmetic on values near 1: 1e-6 relative.
			if math.Abs(float64(p[0])-c.want[step]) > 1e-6 {
				t.Errorf("%s step %d: p = %.8g, want %.8g", c.name, step+1, p[0], c.want[step])
			}
			if g[0] != gBefore {
				t.Errorf("%s: Step modified the gradient (%g -> %g)", c.name, gBefore, g[0])
			}
		}
	}
}

func TestSGDErrorsAndState(t *testing.T) {
	for _, c := range []SGDConfig{{LR: -1}, {LR: 1, Momentum: -1}, {LR: 1, WeightDecay: -1}, {LR: 1, Nesterov: true}, {LR: 1, Momentum: 0.9, Dampening: 0.1, Nesterov: true}} {
		if _, err := NewSGD(c); err == nil {
			t.Errorf("NewSGD(%+v) accepted", c)
		}
	}
	cfg := SGDConfig{LR: 0.1, Momentum: 0.9}
	a, _ := NewSGD(cfg)
	pa := []float32{1, -1}
	a.Step([]Param{{Name: "p", Data: pa, Grad: []float32{1, 2}}})
	snap := a.State()
	b, _ := NewSGD(cfg)
	if err := b.LoadState(snap); err != nil {
		t.Fatal(err)
	}
	pb := append([]float32(nil), pa...)
	a.Step([]Param{{Name: "p", Data: pa, Grad: []float32{0.5, 0.5}}})
	b.Step([]Param{{Name: "p", Data: pb, Grad: []float32{0.5, 0.5}}})
	if pa[0] != pb[0] || pa[1] != pb[1] {
		t.Errorf("resumed SGD differs: %v vs %v", pb, pa)
	}
	// StateView: the momentum buffer itself (the step above moved it past
	// the copy State made before it).
	if v := a.StateView(); v.Kind != "sgd" || !slices.Equal(v.Params[0].M, a.State().Params[0].M) || slices.Equal(v.Params[0].M, snap.Params[0].M) {
		t.Errorf("StateView %+v: want the current momentum, not the earlier copy %+v", v, snap)
	}
	if err := b.LoadState(State{Kind: "adamw"}); err == nil {
		t.Error("adamw state loaded into SGD")
	}
}
