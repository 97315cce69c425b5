package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// unfusedBlock is Model.block as it was before AddRMSNorm: the residual
// add and the norm reading it as separate nodes. It is the reference the
// fused block must match bit for bit.
func (m *Model) unfusedBlock(tp *autograd.Tape, b *Block, x *autograd.Var, cos, sin *tensor.Tensor, p tensor.AttentionParams) *autograd.Var {
	c := m.Config
	B, T := x.Value.Dim(0), x.Value.Dim(1)
	h := m.norm(tp, x, b.InputNorm)
	q, k, v := m.projectQKV(tp, b, h)
	q = tp.Reshape(q, B, T, c.NumHeads, c.HeadDim)
	k = tp.Reshape(k, B, T, c.NumKVHeads, c.HeadDim)
	v = tp.Reshape(v, B, T, c.NumKVHeads, c.HeadDim)
	q, k = m.headNorm(tp, q, b.QNorm), m.headNorm(tp, k, b.KNorm)
	q = rotate(tp, q, cos, sin)
	k = rotate(tp, k, cos, sin)
	a := tp.Attention(q, k, v, p)
	a = tp.Reshape(a, B, T, c.NumHeads*c.HeadDim)
	a = b.Attn.O.Forward(tp, a)
	if b.PreFFNNorm == nil {
		x = tp.Add(x, a)
		return tp.Add(x, m.gatedMLP(tp, b, m.norm(tp, x, b.PostAttnNorm)))
	}
	x = tp.Add(x, m.norm(tp, a, b.PostAttnNorm))
	f := m.gatedMLP(tp, b, m.norm(tp, x, b.PreFFNNorm))
	return tp.Add(x, m.norm(tp, f, b.PostFFNNorm))
}

// TestBlockAddRMSNormBitwise: a decoder block with the fused AddRMSNorm
// gives the unfused block's output, input gradient and every parameter
// gradient bit for bit on the CPU in float32 (Qwen3: Llama's block with
// q/k norms; Gemma 3: (1 + w) weights, post-norms before the residual
// adds).
func TestBlockAddRMSNormBitwise(t *testing.T) {
	for _, tc := range []struct{ name, cfg string }{{"qwen3", qwen3Config}, {"gemma3", gemma3Config}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(writeFolder(t, tc.cfg, randomWeights(t, tc.cfg, 5)), LoadOptions{Trainable: true})
			if err != nil {
				t.Fatal(err)
			}
			c, be := m.Config, m.Backend
			const B, T = 2, 7
			rng := rand.New(rand.NewPCG(9, 1))
			host := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return v
			}
			xv := tensor.FromHost(be, tensor.F32, host(B*T*c.HiddenSize), B, T, c.HiddenSize)
			probe := tensor.FromHost(be, tensor.F32, host(B*T*c.HiddenSize), B, T, c.HiddenSize)
			pos := make([]int, B*T)
			for i := range pos {
				pos[i] = i % T
			}
			cos, sin := c.RopeTables(be, tensor.F32, pos, B, T)
			p := tensor.AttentionParams{Scale: float32(1 / math.Sqrt(float64(c.HeadDim))), Causal: true}
			blk := m.Layers[0]
			run := func(fused bool) (out []float32, grads map[string][]float32) {
				tp := autograd.NewTape()
				x := autograd.Param(xv, "x")
				var y *autograd.Var
				if fused {
					y = m.block(tp, blk, x, cos, sin, p, nil)
				} else {
					y = m.unfusedBlock(tp, blk, x, cos, sin, p)
				}
				loss := tp.SumAll(tp.Mul(y, autograd.Const(probe)))
				if err := tp.Backward(loss); err != nil {
					t.Fatal(err)
				}
				grads = map[string][]float32{"x": x.Grad.F32()}
				for name, v := range m.Params() {
					if v.Grad != nil {
						grads[name] = v.Grad.F32()
						v.ZeroGrad()
					}
				}
				return y.Value.F32(), grads
			}
			fo, fg := run(true)
			uo, ug := run(false)
			same := func(what string, a, b []float32) {
				if len(a) != len(b) {
					t.Fatalf("%s: %d and %d values", what, len(a), len(b))
				}
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("%s[%d]: fused %v, unfused %v", what, i, a[i], b[i])
					}
				}
			}
			same("output", fo, uo)
			if len(fg) != len(ug) || len(fg) < 10 {
				t.Fatalf("%d gradients fused, %d unfused", len(fg), len(ug))
			}
			for name, g := range ug {
				same(name+" gradient", fg[name], g)
			}
		})
	}
}
