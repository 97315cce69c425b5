package autograd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/tensor"
)

var cpu = tensor.CPUDefault()

func randT(r *rand.Rand, shape ...int) *tensor.Tensor {
	n := tensor.Shape(shape).Numel()
	d := make([]float64, n)
	for i := range d {
		d[i] = r.NormFloat64()
	}
	return tensor.FromHost(cpu, tensor.F64, d, shape...)
}

func positive(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := randT(r, shape...)
	d := tensor.F64Data(t)
	for i := range d {
		d[i] = 0.5 + math.Abs(d[i])
	}
	return t
}

// gradCheck compares the tape's gradient of sum(f(in)·R) for a fixed random
// R with float64 central differences. With h = 1e-6 the truncation error is
// O(h²·f”') ≈ 1e-12 and the rounding error O(ε/h) ≈ 1e-10, so 1e-6
// relative (to the largest gradient entry) is a loose bound that still
// catches any wrong derivative term.
func gradCheck(t *testing.T, name string, f func(tp *Tape, in []*Var) *Var, inputs ...*tensor.Tensor) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	vars := make([]*Var, len(inputs))
	for i, x := range inputs {
		vars[i] = Param(x, fmt.Sprintf("in%d", i))
	}
	probe := f(nil, vars)
	R := randT(r, probe.Shape()...)
	objective := func(tp *Tape, vs []*Var) *Var {
		return tp.SumAll(tp.Mul(f(tp, vs), Const(R)))
	}
	tp := NewTape()
	loss := objective(tp, vars)
	if err := tp.Backward(loss); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	const h = 1e-6
	for i, v := range vars {
		if v.Grad == nil {
			t.Fatalf("%s: input %d got no gradient", name, i)
		}
		got := v.Grad.F64()
		data := tensor.F64Data(v.Value)
		worst, scale := 0.0, 1e-3
		for j := range data {
			orig := data[j]
			data[j] = orig + h
			fp := objective(nil, vars).Value.Item()
			data[j] = orig - h
			fm := objective(nil, vars).Value.Item()
			data[j] = orig
			num := (fp - fm) / (2 * h)
			worst = math.Max(worst, math.Abs(num-got[j]))
			scale = math.Max(scale, math.Abs(num))
		}
		if worst/scale > 1e-6 {
			t.Errorf("%s: input %d: max |analytic−numeric| = %.3g (relative %.3g)", name, i, worst, worst/scale)
		}
	}
}

func TestGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	one := func(fn func(tp *Tape, a *Var) *Var) func(tp *Tape, in []*Var) *Var {
		return func(tp *Tape, in []*Var) *Var { return fn(tp, in[0]) }
	}
	two := func(fn func(tp *Tape, a, b *Var) *Var) func(tp *Tape, in []*Var) *Var {
		return func(tp *Tape, in []*Var) *Var { return fn(tp, in[0], in[1]) }
	}
	cases := []struct {
		name string
		f    func(tp *Tape, in []*Var) *Var
		in   []*tensor.Tensor
	}{
		{"matmul", two(func(tp *Tape, a, b *Var) *Var { return tp.MatMul(a, b, false, false) }), []*tensor.Tensor{randT(r, 3, 4), randT(r, 4, 5)}},
		{"matmul_tB", two(func(tp *Tape, a, b *Var) *Var { return tp.MatMul(a, b, false, true) }), []*tensor.Tensor{randT(r, 3, 4), randT(r, 5, 4)}},
		{"matmul_tA", two(func(tp *Tape, a, b *Var) *Var { return tp.MatMul(a, b, true, false) }), []*tensor.Tensor{randT(r, 4, 3), randT(r, 4, 5)}},
		{"matmul_tAtB", two(func(tp *Tape, a, b *Var) *Var { return tp.MatMul(a, b, true, true) }), []*tensor.Tensor{randT(r, 4, 3), randT(r, 5, 4)}},
		{"matmul_batched", two(func(tp *Tape, a, b *Var) *Var { return tp.MatMul(a, b, false, true) }), []*tensor.Tensor{randT(r, 2, 3, 4), randT(r, 2, 5, 4)}},
		{"linear_shared_weight", two(func(tp *Tape, a, b *Var) *Var { return tp.Linear(a, b, nil) }), []*tensor.Tensor{randT(r, 2, 3, 4), randT(r, 5, 4)}},
		{"add_broadcast", two(func(tp *Tape, a, b *Var) *Var { return tp.Add(a, b) }), []*tensor.Tensor{randT(r, 2, 3, 4), randT(r, 4)}},
		{"sub_broadcast", two(func(tp *Tape, a, b *Var) *Var { return tp.Sub(a, b) }), []*tensor.Tensor{randT(r, 3, 1), randT(r, 1, 4)}},
		{"mul_broadcast", two(func(tp *Tape, a, b *Var) *Var { return tp.Mul(a, b) }), []*tensor.Tensor{randT(r, 2, 3, 4), randT(r, 3, 1)}},
		{"div", two(func(tp *Tape, a, b *Var) *Var { return tp.Div(a, b) }), []*tensor.Tensor{randT(r, 3, 4), positive(r, 3, 4)}},
		{"scale", one(func(tp *Tape, a *Var) *Var { return tp.Scale(a, -2.5) }), []*tensor.Tensor{randT(r, 5)}},
		{"exp", one(func(tp *Tape, a *Var) *Var { return tp.Exp(a) }), []*tensor.Tensor{randT(r, 6)}},
		{"log", one(func(tp *Tape, a *Var) *Var { return tp.Log(a) }), []*tensor.Tensor{positive(r, 6)}},
		{"silu", one(func(tp *Tape, a *Var) *Var { return tp.Silu(a) }), []*tensor.Tensor{randT(r, 7)}},
		{"square", one(func(tp *Tape, a *Var) *Var { return tp.Square(a) }), []*tensor.Tensor{randT(r, 7)}},
		{"rsqrt", one(func(tp *Tape, a *Var) *Var { return tp.Rsqrt(a) }), []*tensor.Tensor{positive(r, 7)}},
		{"sum_axis", one(func(tp *Tape, a *Var) *Var { return tp.Sum(a, 1, false) }), []*tensor.Tensor{randT(r, 2, 3, 4)}},
		{"mean_keep", one(func(tp *Tape, a *Var) *Var { return tp.Mean(a, -1, true) }), []*tensor.Tensor{randT(r, 3, 4)}},
		{"max", one(func(tp *Tape, a *Var) *Var { return tp.Max(a, 0, false) }), []*tensor.Tensor{randT(r, 4, 3)}},
		{"softmax", one(func(tp *Tape, a *Var) *Var { return tp.Softmax(a) }), []*tensor.Tensor{randT(r, 3, 5)}},
		{"log_softmax", one(func(tp *Tape, a *Var) *Var { return tp.LogSoftmax(a) }), []*tensor.Tensor{randT(r, 3, 5)}},
		{"reshape_permute", one(func(tp *Tape, a *Var) *Var {
			return tp.Permute(tp.Reshape(a, 2, 3, 4), 2, 0, 1)
		}), []*tensor.Tensor{randT(r, 6, 4)}},
		{"transpose_narrow", one(func(tp *Tape, a *Var) *Var { return tp.Narrow(tp.Transpose(a, 0, 1), 0, 1, 2) }), []*tensor.Tensor{randT(r, 3, 4)}},
		{"concat_split", two(func(tp *Tape, a, b *Var) *Var {
			c := tp.Concat(1, a, b)
			p := tp.Split(c, 1, 2, 3)
			return tp.Mul(p[0], tp.Narrow(p[1], 1, 0, 2))
		}), []*tensor.Tensor{randT(r, 2, 1), randT(r, 2, 4)}},
		{"rmsnorm", two(func(tp *Tape, a, w *Var) *Var { return tp.RMSNorm(a, w, 1e-5) }), []*tensor.Tensor{randT(r, 3, 8), randT(r, 8)}},
		{"swiglu", two(func(tp *Tape, g, u *Var) *Var { return tp.SwiGLU(g, u) }), []*tensor.Tensor{randT(r, 3, 5), randT(r, 3, 5)}},
		{"geglu", two(func(tp *Tape, g, u *Var) *Var { return tp.GeGLU(g, u) }), []*tensor.Tensor{randT(r, 3, 5), randT(r, 3, 5)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { gradCheck(t, c.name, c.f, c.in...) })
	}
}

func TestGradRoPE(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	B, T, H, D := 2, 3, 2, 4
	ang := randT(r, B, T, D/2)
	cos, sin := tensor.Unary(ang, tensor.OpCos), tensor.Unary(ang, tensor.OpSin)
	gradCheck(t, "rope", func(tp *Tape, in []*Var) *Var { return tp.RoPE(in[0], cos, sin) }, randT(r, B, T, H, D))
}

func TestGradEmbedding(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ids := tensor.FromHost(cpu, tensor.I64, []int64{3, 0, 3, 1, 4}, 5)
	gradCheck(t, "embedding", func(tp *Tape, in []*Var) *Var { return tp.Embedding(in[0], ids) }, randT(r, 6, 4))
}

func TestGradAttention(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	B, T, Hq, Hkv, D := 2, 5, 4, 2, 3
	mask := tensor.FromHost(cpu, tensor.I64, []int64{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, B, T)
	seg := tensor.FromHost(cpu, tensor.I64, []int64{0, 0, 1, 1, 1, 0, 0, 0, 0, 0}, B, T)
	for _, p := range []tensor.AttentionParams{
		{Scale: 0.6, Causal: true},
		{Scale: 0.6, Causal: true, KeyMask: mask},
		{Scale: 0.6, Causal: true, Window: 2},
		{Scale: 0.6, Causal: true, Segments: seg},
		{Scale: 0.6},
	} {
		gradCheck(t, fmt.Sprintf("attention %+v", p), func(tp *Tape, in []*Var) *Var {
			return tp.Attention(in[0], in[1], in[2], p)
		}, randT(r, B, T, Hq, D), randT(r, B, T, Hkv, D), randT(r, B, T, Hkv, D))
	}
}

func TestGradCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	labels := tensor.FromHost(cpu, tensor.I64, []int64{2, -100, 0, 4}, 4)
	gradCheck(t, "cross_entropy", func(tp *Tape, in []*Var) *Var {
		l, err := tp.CrossEntropy(in[0], labels, -100)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, randT(r, 4, 5))
}

func TestGradCheckpoint(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	w := Param(randT(r, 4, 4), "w")
	block := func(tp *Tape, in []*Var) []*Var {
		h := tp.Silu(tp.Linear(in[0], w, nil))
		return []*Var{tp.Add(h, in[0])}
	}
	x := randT(r, 3, 4)
	run := func(ckpt bool) (gx, gw []float64) {
		w.ZeroGrad()
		xv := Param(x, "x")
		tp := NewTape()
		var y *Var
		if ckpt {
			y = tp.Checkpoint(block, xv)[0]
		} else {
			y = block(tp, []*Var{xv})[0]
		}
		loss := tp.SumAll(tp.Square(y))
		if err := tp.Backward(loss); err != nil {
			t.Fatal(err)
		}
		return xv.Grad.F64(), w.Grad.F64()
	}
	gx1, gw1 := run(false)
	gx2, gw2 := run(true)
	for i := range gx1 {
		if gx1[i] != gx2[i] {
			t.Fatalf("checkpointed dx[%d] = %g, plain %g", i, gx2[i], gx1[i])
		}
	}
	for i := range gw1 {
		if gw1[i] != gw2[i] {
			t.Fatalf("checkpointed dw[%d] = %g, plain %g", i, gw2[i], gw1[i])
		}
	}
}

func TestFrozenGetsNoGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	w := Frozen(randT(r, 4, 4), "base")
	a := Param(randT(r, 2, 4), "lora")
	tp := NewTape()
	loss := tp.SumAll(tp.Linear(a, w, nil))
	if err := tp.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if w.Grad != nil {
		t.Fatal("frozen weight got a gradient buffer")
	}
	if a.Grad == nil {
		t.Fatal("trainable input got no gradient")
	}
	var nilTape *Tape
	y := nilTape.Linear(a, w, nil)
	if y.RequiresGrad() || nilTape.Len() != 0 {
		t.Fatal("inference mode recorded an op")
	}
}

func TestGradLinearCrossEntropy(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 17))
	labels := tensor.FromHost(cpu, tensor.I64, []int64{2, -100, 0, 4, 1}, 5)
	gradCheck(t, "linear_cross_entropy", func(tp *Tape, in []*Var) *Var {
		l, err := tp.LinearCrossEntropy(in[0], in[1], labels, -100, 2)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, randT(r, 5, 3), randT(r, 6, 3))
}

func TestGradLoRALinear(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 19))
	// p = 1/3: kept elements scaled by 1.5; over x's 30 elements some drop
	// (all kept has probability (2/3)^30 ≈ 5e-6, and the stream is fixed).
	stream := &tensor.DropoutStream{Key: 7, Pos: 3, P: 1.0 / 3}
	for _, m := range []*tensor.DropoutStream{nil, stream} {
		gradCheck(t, "lora_linear", func(tp *Tape, in []*Var) *Var {
			return tp.LoRALinear(in[0], in[1], in[2], in[3], in[4], 0.7, m)
		}, randT(r, 2, 3, 5), randT(r, 4, 5), randT(r, 4), randT(r, 2, 5), randT(r, 4, 2))
	}
	// The fused node equals the composite x·wᵀ + b + s·(x·aᵀ)·bᵀ.
	x, w, a, b := Const(randT(r, 3, 5)), Const(randT(r, 4, 5)), Const(randT(r, 2, 5)), Const(randT(r, 4, 2))
	var tp *Tape
	fused := tp.LoRALinear(x, w, nil, a, b, 0.7, nil).Value.F64()
	comp := tp.Add(tp.Linear(x, w, nil), tp.Scale(tp.Linear(tp.Linear(x, a, nil), b, nil), 0.7)).Value.F64()
	for i := range fused {
		if math.Abs(fused[i]-comp[i]) > 1e-12 {
			t.Fatalf("fused %g vs composite %g at %d", fused[i], comp[i], i)
		}
	}
}
