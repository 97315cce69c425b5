package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// relClose reports |got-want| <= tol*max(1,|want|).
func relClose(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// TestAdamWHandTrajectory follows torch.optim.AdamW on a two-parameter
// problem derived by hand. f(a, b) = a² + 3b², so ∂f/∂a = 2a, ∂f/∂b = 6b;
// a = 1, b = -2; lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.1,
// with b named as a bias and so excluded from decay.
//
// Step 1 (t=1): g_a = 2; a ← 1·(1-0.1·0.1) = 0.99; m = 0.2, v = 0.004;
// m̂ = 0.2/0.1 = 2, v̂ = 0.004/0.001 = 4; a ← 0.99 - 0.1·2/(2+1e-8) = 0.8900000005.
// b: g = -12, m = -1.2, v = 0.144, m̂ = -12, v̂ = 144; b ← -2 + 0.1·12/(12+1e-8).
// Step 2: g_a = 1.78; a ← 0.89·0.99 = 0.8811; m = 0.9·0.2+0.1·1.78 = 0.358;
// v = 0.999·0.004+0.001·1.78² = 0.0071644; m̂ = 0.358/0.19, v̂ = 0.0071644/0.001999;
// a ← 0.8811 - 0.1·1.884210/1.893144 = 0.7815719.
// Step 3 continues the same way (values below are those of the formulas in
// float64). The optimizer works in float32, so agreement is to float32
// rounding: 1e-6 relative.
func TestAdamWHandTrajectory(t *testing.T) {
	opt, err := NewAdamW(AdamWConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, NoDecay: DefaultNoDecay})
	if err != nil {
		t.Fatal(err)
	}
	a := []float32{1}
	b := []float32{-2}
	ga := []float32{0}
	gb := []float32{0}
	want := []struct{ a, b float64 }{
		{0.8900000004999999, -1.9000000000833333},
		{0.7815718559365048, -1.8001664857787731},
		{0.6751012216400698, -1.7006233915360325},
	}
	for step, w := range want {
		ga[0] = 2 * a[0]
		gb[0] = 6 * b[0]
		if err := opt.Step([]Param{{Name: "w", Data: a, Grad: ga}, {Name: "layer.bias", Data: b, Grad: gb}}); err != nil {
			t.Fatal(err)
		}
		if !relClose(float64(a[0]), w.a, 1e-6) || !relClose(float64(b[0]), w.b, 1e-6) {
			t.Errorf("step %d: a=%.9g b=%.9g, want a=%.9g b=%.9g", step+1, a[0], b[0], w.a, w.b)
		}
	}
	st := opt.State()
	if len(st.Params) != 2 || st.Params[0].Step != 3 {
		t.Fatalf("state %+v: want 2 params at step 3", st)
	}
	// m and v of a after step 3, from the same derivation.
	if !relClose(float64(st.Params[0].M[0]), 0.4785143712773008, 1e-6) ||
		!relClose(float64(st.Params[0].V[0]), 0.009600653867524579, 1e-6) {
		t.Errorf("a's moments m=%g v=%g, want 0.47851437 0.0096006539", st.Params[0].M[0], st.Params[0].V[0])
	}
}

// adamwRef64 is the textbook AdamW of the torch documentation in float64.
func adamwRef64(p, g, m, v []float64, t int, lr, b1, b2, eps, wd float64) {
	for i := range p {
		p[i] *= 1 - lr*wd
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		mh := m[i] / (1 - math.Pow(b1, float64(t)))
		vh := v[i] / (1 - math.Pow(b2, float64(t)))
		p[i] -= lr * mh / (math.Sqrt(vh) + eps)
	}
}

// TestAdamWMatchesFloat64Reference runs 50 steps on random data with random
// gradients (independent of p, so float32 rounding does not feed back through
// the gradient) and compares with the float64 formula. 50 float32 updates of
// size ~lr accumulate a few ulp of p each: 1e-5 relative is ample yet would
// catch any wrong term (bias correction, decay order, eps placement).
func TestAdamWMatchesFloat64Reference(t *testing.T) {
	// beta1 0.6 takes lerp's other branch; eps 0.3 is of the size of sqrt(v̂)
	// so that adding it anywhere else than after the square root shows.
	for _, c := range []struct{ beta1, eps float64 }{{0.9, 1e-6}, {0.6, 0.3}} {
		beta1 := c.beta1
		rng := rand.New(rand.NewPCG(1, 2))
		const n = 37
		cfg := AdamWConfig{LR: 3e-3, Beta1: beta1, Beta2: 0.95, Eps: c.eps, WeightDecay: 0.05}
		opt, _ := NewAdamW(cfg)
		p32 := make([]float32, n)
		g32 := make([]float32, n)
		p64 := make([]float64, n)
		g64 := make([]float64, n)
		m64 := make([]float64, n)
		v64 := make([]float64, n)
		for i := range p32 {
			p32[i] = float32(rng.NormFloat64())
			p64[i] = float64(p32[i])
		}
		for step := 1; step <= 50; step++ {
			for i := range g32 {
				g32[i] = float32(rng.NormFloat64() * 0.1)
				g64[i] = float64(g32[i])
			}
			if err := opt.Step([]Param{{Name: "x", Data: p32, Grad: g32}}); err != nil {
				t.Fatal(err)
			}
			adamwRef64(p64, g64, m64, v64, step, cfg.LR, cfg.Beta1, cfg.Beta2, cfg.Eps, cfg.WeightDecay)
		}
		for i := range p32 {
			if !relClose(float64(p32[i]), p64[i], 1e-5) {
				t.Fatalf("beta1 %v: p[%d] = %.9g, float64 reference %.9g", beta1, i, p32[i], p64[i])
			}
		}
	}
}

func TestAdamWSkipsNilGradAndExcludesNoDecay(t *testing.T) {
	opt, _ := NewAdamW(AdamWConfig{LR: 0.5, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1, NoDecay: DefaultNoDecay})
	frozen := []float32{3}
	norm := []float32{2}
	if err := opt.Step([]Param{
		{Name: "frozen", Data: frozen},
		{Name: "model.norm.weight", Data: norm, Grad: []float32{0}},
	}); err != nil {
		t.Fatal(err)
	}
	if frozen[0] != 3 {
		t.Errorf("param without grad changed to %g", frozen[0])
	}
	// Zero gradient and no decay: the norm weight must not move at all
	// (with decay it would be 2·(1-0.5) = 1).
	if norm[0] != 2 {
		t.Errorf("norm weight with zero grad and no decay moved to %g", norm[0])
	}
	if len(opt.State().Params) != 1 {
		t.Errorf("state created for a parameter without gradient: %+v", opt.State())
	}
}

func TestDefaultNoDecay(t *testing.T) {
	cases := map[string]bool{
		"model.norm.weight":                              true,
		"model.layers.0.input_layernorm.weight":          true,
		"model.layers.3.post_attention_layernorm.weight": true,
		"model.layers.0.self_attn.q_norm.weight":         true,
		"model.layers.0.self_attn.q_proj.bias":           true,
		"model.layers.0.self_attn.q_proj.weight":         false,
		"model.layers.0.self_attn.q_proj.lora_A.weight":  false,
		"lm_head.weight":                                 false,
		"model.embed_tokens.weight":                      false,
		"model.normalizer.weight":                        false, // "norm" must be a whole segment
	}
	for name, want := range cases {
		if got := DefaultNoDecay(name); got != want {
			t.Errorf("DefaultNoDecay(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAdamWStateRoundTrip(t *testing.T) {
	cfg := AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	rng := rand.New(rand.NewPCG(3, 4))
	grads := make([][]float32, 5)
	for i := range grads {
		grads[i] = make([]float32, 8)
		for j := range grads[i] {
			grads[i][j] = float32(rng.NormFloat64())
		}
	}
	a, _ := NewAdamW(cfg)
	pa := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	for i := 0; i < 3; i++ {
		a.Step([]Param{{Name: "p", Data: pa, Grad: grads[i]}})
	}
	snap := a.State()
	pb := append([]float32(nil), pa...)
	for i := 3; i < 5; i++ {
		a.Step([]Param{{Name: "p", Data: pa, Grad: grads[i]}})
	}
	if snap.Params[0].Step != 3 {
		t.Fatalf("snapshot changed by later steps: step %d", snap.Params[0].Step)
	}
	b, _ := NewAdamW(cfg)
	if err := b.LoadState(snap); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 5; i++ {
		b.Step([]Param{{Name: "p", Data: pb, Grad: grads[i]}})
	}
	for i := range pa {
		if pa[i] != pb[i] {
			t.Fatalf("resumed run differs at %d: %g vs %g (must be bit-identical)", i, pb[i], pa[i])
		}
	}
}

// TestAdamWStateView: StateView holds State's values without copying them
// (the optimizer's own moments, which a later step changes); State's copy
// does not move.
func TestAdamWStateView(t *testing.T) {
	a, _ := NewAdamW(AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	p := []float32{1, 2, 3}
	step := func() {
		if err := a.Step([]Param{{Name: "p", Data: p, Grad: []float32{0.5, -1, 2}}}); err != nil {
			t.Fatal(err)
		}
	}
	step()
	copied, view := a.State(), a.StateView()
	if !slices.Equal(copied.Params[0].M, view.Params[0].M) || !slices.Equal(copied.Params[0].V, view.Params[0].V) || view.Kind != "adamw" || view.Params[0].Step != 1 {
		t.Fatalf("StateView %+v differs from State %+v", view, copied)
	}
	step()
	if slices.Equal(copied.Params[0].M, view.Params[0].M) {
		t.Error("StateView's moments did not follow the next step: a copy, not the optimizer's own")
	}
	if !slices.Equal(a.State().Params[0].M, view.Params[0].M) {
		t.Error("StateView's moments are not the optimizer's current ones")
	}
}

func TestAdamWErrors(t *testing.T) {
	bad := []AdamWConfig{
		{LR: -1, Beta1: 0.9, Beta2: 0.999},
		{LR: 1, Beta1: 1, Beta2: 0.999},
		{LR: 1, Beta1: 0.9, Beta2: -0.1},
		{LR: 1, Beta1: 0.9, Beta2: 0.9, Eps: -1},
		{LR: 1, Beta1: 0.9, Beta2: 0.9, WeightDecay: -1},
		{LR: math.NaN(), Beta1: 0.9, Beta2: 0.9},
	}
	for _, c := range bad {
		if _, err := NewAdamW(c); err == nil {
			t.Errorf("NewAdamW(%+v) accepted", c)
		}
	}
	opt, _ := NewAdamW(DefaultAdamW())
	p := []float32{1, 2}
	if err := opt.Step([]Param{{Name: "p", Data: p, Grad: []float32{1}}}); err == nil {
		t.Error("grad shorter than data accepted")
	}
	if err := opt.Step([]Param{{Name: "p", Data: p, Grad: []float32{1, 1}}, {Name: "p", Data: p, Grad: []float32{1, 1}}}); err == nil {
		t.Error("duplicate name accepted")
	}
	if err := opt.Step([]Param{{Data: p, Grad: []float32{1, 1}}}); err == nil {
		t.Error("empty name accepted")
	}
	if err := opt.Step([]Param{{Name: "p", Data: p, Grad: []float32{1, 1}}}); err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), p...)
	q := []float32{5}
	err := opt.Step([]Param{{Name: "q", Data: q, Grad: []float32{1}}, {Name: "p", Data: []float32{1, 2, 3}, Grad: []float32{1, 1, 1}}})
	if !errors.Is(err, ErrStateMismatch) {
		t.Errorf("size change of p: err = %v, want ErrStateMismatch", err)
	}
	if q[0] != 5 || p[0] != before[0] {
		t.Error("a failed Step changed parameters")
	}
	if err := opt.LoadState(State{Kind: "sgd"}); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("loading sgd state into adamw: err = %v", err)
	}
	if err := opt.LoadState(State{Kind: "adamw", Params: []ParamState{{Name: "p", M: []float32{1}, V: nil}}}); err == nil {
		t.Error("state with len(m) != len(v) accepted")
	}
}
