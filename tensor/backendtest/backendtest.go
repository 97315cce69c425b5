package backendtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/tensor"
)

// Tolerances: normalised Frobenius error against the float64 reference.
// Float32 kernels accumulate with ~1e-7 relative rounding per operation;
// reductions over ≤ 1000 terms stay below 1e-5. BF16 backends pass Tol.
type Tol struct {
	Elementwise, Reduce, MatMul, Fused float64
}

// F32Tol is for backends computing in float32.
var F32Tol = Tol{Elementwise: 1e-6, Reduce: 1e-5, MatMul: 1e-5, Fused: 1e-5}

var ref = tensor.CPUDefault()

type suite struct {
	t   *testing.T
	b   tensor.Backend
	tol Tol
	r   *rand.Rand
}

// Run checks every op of b in float32 against the float64 CPU reference.
func Run(t *testing.T, b tensor.Backend, tol Tol) {
	s := &suite{t: t, b: b, tol: tol, r: rand.New(rand.NewPCG(42, 4242))}
	t.Run("matmul", s.matmul)
	t.Run("binary", s.binary)
	t.Run("unary", s.unary)
	t.Run("reduce", s.reduce)
	t.Run("softmax", s.softmax)
	t.Run("rmsnorm", s.rmsnorm)
	t.Run("add_rmsnorm", s.addRMSNorm)
	t.Run("rope", s.rope)
	t.Run("swiglu", s.swiglu)
	t.Run("geglu", s.geglu)
	t.Run("softcap", s.softcap)
	t.Run("embedding", s.embedding)
	t.Run("attention", s.attention)
	t.Run("cross_entropy", s.crossEntropy)
	t.Run("shapes", s.shapes)
	t.Run("gemma_shapes", s.gemmaShapes)
}

// host returns random float64 values and the same on the backend in F32.
func (s *suite) rand(shape ...int) (ref64, dev *tensor.Tensor) {
	n := tensor.Shape(shape).Numel()
	d := make([]float64, n)
	for i := range d {
		d[i] = s.r.NormFloat64()
	}
	f := make([]float32, n)
	for i, v := range d {
		f[i] = float32(v)
		d[i] = float64(f[i]) // both sides see identical inputs
	}
	return tensor.FromHost(ref, tensor.F64, d, shape...), tensor.FromHost(s.b, tensor.F32, f, shape...)
}

// poisoned allocates an output on the backend filled with NaN, so an op
// that leaves any element unwritten fails the comparison.
func (s *suite) poisoned(dt tensor.DType, shape ...int) *tensor.Tensor {
	return tensor.Full(s.b, dt, math.NaN(), shape...)
}

func (s *suite) compare(what string, got *tensor.Tensor, want *tensor.Tensor, tol float64) {
	s.t.Helper()
	g, w := got.F64(), want.F64()
	if len(g) != len(w) {
		s.t.Fatalf("%s: %d values, want %d", what, len(g), len(w))
	}
	// Non-finite expected values must match exactly; the finite ones are
	// compared by the project's one normalised error.
	var gf, wf []float64
	for i := range g {
		if math.IsNaN(g[i]) != math.IsNaN(w[i]) {
			s.t.Fatalf("%s: element %d is %g, want %g", what, i, g[i], w[i])
		}
		if math.IsNaN(w[i]) || math.IsInf(w[i], 0) {
			if g[i] != w[i] && !(math.IsNaN(g[i]) && math.IsNaN(w[i])) {
				s.t.Fatalf("%s: element %d is %g, want %g", what, i, g[i], w[i])
			}
			continue
		}
		gf, wf = append(gf, g[i]), append(wf, w[i])
	}
	e := testutil.RelFrobenius(gf, wf)
	if !(e <= tol) {
		s.t.Errorf("%s: relative error %.3g > %g", what, e, tol)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Ragged sizes around typical SIMD widths and tiles.
var sizes = []int{1, 3, 7, 16, 17, 33, 64, 129}

func (s *suite) matmul(t *testing.T) {
	for _, mnk := range [][3]int{{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 64, 64}, {65, 31, 129}, {1, 256, 48}} {
		m, n, k := mnk[0], mnk[1], mnk[2]
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			ash := []int{m, k}
			if tr[0] {
				ash = []int{k, m}
			}
			bsh := []int{k, n}
			if tr[1] {
				bsh = []int{n, k}
			}
			a64, a := s.rand(ash...)
			b64, b := s.rand(bsh...)
			out := s.poisoned(tensor.F32, m, n)
			must(t, s.b.MatMul(out, a, b, tr[0], tr[1], 1, 0))
			s.compare(fmt.Sprintf("matmul %dx%dx%d trans=%v", m, n, k, tr), out, tensor.MatMul(a64, b64, tr[0], tr[1]), s.tol.MatMul)
		}
	}
	// alpha/beta accumulate, batched with a shared weight, BF16 weight.
	a64, a := s.rand(2, 5, 6)
	w64, w := s.rand(7, 6)
	c64, c := s.rand(2, 5, 7)
	must(t, s.b.MatMul(c, a, w, false, true, 0.5, 2))
	want := tensor.Add(tensor.Scale(tensor.MatMul(a64, w64, false, true), 0.5), tensor.Scale(c64, 2))
	s.compare("batched shared weight alpha=0.5 beta=2", c, want, s.tol.MatMul)

	wb := w.To(tensor.BF16)
	wb64 := wb.To(tensor.F64)
	wb64 = tensor.FromHost(ref, tensor.F64, wb64.F64(), 7, 6)
	out := s.poisoned(tensor.F32, 2, 5, 7)
	must(t, s.b.MatMul(out, a, wb, false, true, 1, 0))
	s.compare("bf16 weight", out, tensor.MatMul(a64, wb64, false, true), s.tol.MatMul)
}

func (s *suite) binary(t *testing.T) {
	ops := map[string]tensor.BinaryOp{"add": tensor.OpAdd, "sub": tensor.OpSub, "mul": tensor.OpMul, "div": tensor.OpDiv, "max": tensor.OpMax}
	for name, op := range ops {
		for _, shapes := range [][2][]int{{{17}, {17}}, {{3, 33}, {33}}, {{4, 1, 7}, {1, 5, 7}}, {{2, 3, 4}, {3, 1}}} {
			a64, a := s.rand(shapes[0]...)
			b64, b := s.rand(shapes[1]...)
			sh, _ := tensor.BroadcastShapes(a.Shape(), b.Shape())
			out := s.poisoned(tensor.F32, sh...)
			must(t, s.b.Binary(op, out, a.Expand(sh), b.Expand(sh)))
			want := tensor.New(ref, tensor.F64, sh...)
			must(t, ref.Binary(op, want, a64.Expand(sh), b64.Expand(sh)))
			s.compare(fmt.Sprintf("%s %v %v", name, shapes[0], shapes[1]), out, want, s.tol.Elementwise)
		}
	}
}

func (s *suite) unary(t *testing.T) {
	ops := map[string]tensor.UnaryOp{"neg": tensor.OpNeg, "exp": tensor.OpExp, "silu": tensor.OpSilu, "silu_grad": tensor.OpSiluGrad,
		"sigmoid": tensor.OpSigmoid, "square": tensor.OpSquare, "scale": tensor.OpScale, "abs": tensor.OpAbs}
	for name, op := range ops {
		for _, n := range sizes {
			a64, a := s.rand(n)
			out := s.poisoned(tensor.F32, n)
			must(t, s.b.Unary(op, out, a, 1.5))
			want := tensor.New(ref, tensor.F64, n)
			must(t, ref.Unary(op, want, a64, 1.5))
			s.compare(fmt.Sprintf("%s n=%d", name, n), out, want, s.tol.Elementwise)
		}
	}
}

func (s *suite) reduce(t *testing.T) {
	for name, op := range map[string]tensor.ReduceOp{"sum": tensor.OpSum, "mean": tensor.OpMean, "max": tensor.OpMaxR} {
		for axis := 0; axis < 3; axis++ {
			a64, a := s.rand(3, 17, 5)
			sh := tensor.Shape{3, 17, 5}
			sh[axis] = 1
			out := s.poisoned(tensor.F32, sh...)
			must(t, s.b.Reduce(op, out, a, axis))
			want := tensor.New(ref, tensor.F64, sh...)
			must(t, ref.Reduce(op, want, a64, axis))
			s.compare(fmt.Sprintf("%s axis %d", name, axis), out, want, s.tol.Reduce)
		}
	}
}

// softmaxRef is the composite formula exp(x − max)/Σ exp(x − max).
func softmaxRef(x *tensor.Tensor, log bool) *tensor.Tensor {
	sh := x.Clone()
	sh = tensor.Sub(sh, tensor.Max(x, -1, true))
	lse := tensor.Log(tensor.Sum(tensor.Exp(sh), -1, true))
	if log {
		return tensor.Sub(sh, lse)
	}
	return tensor.Exp(tensor.Sub(sh, lse))
}

func (s *suite) softmax(t *testing.T) {
	for _, n := range sizes {
		for _, log := range []bool{false, true} {
			a64, a := s.rand(3, n)
			out := s.poisoned(tensor.F32, 3, n)
			must(t, s.b.Softmax(out, a, log))
			s.compare(fmt.Sprintf("softmax n=%d log=%v", n, log), out, softmaxRef(a64, log), s.tol.Fused)
		}
	}
}

// rmsnormRef is x·(mean(x²)+eps)^−½·w.
func rmsnormRef(x, w *tensor.Tensor, eps float64) *tensor.Tensor {
	inv := tensor.Pow(tensor.AddScalar(tensor.Mean(tensor.Square(x), -1, true), eps), -0.5)
	return tensor.Mul(tensor.Mul(x, inv), w)
}

func (s *suite) rmsnorm(t *testing.T) {
	for _, d := range sizes {
		x64, x := s.rand(5, d)
		w64, w := s.rand(d)
		out, inv := s.poisoned(tensor.F32, 5, d), s.poisoned(tensor.F32, 5)
		must(t, s.b.RMSNorm(out, inv, x, w, 1e-5))
		s.compare(fmt.Sprintf("rmsnorm d=%d", d), out, rmsnormRef(x64, w64, 1e-5), s.tol.Fused)

		// Backward against the hand-derived formula evaluated in float64.
		// With d = 1 the two terms of dx cancel to ~eps/x² of their size,
		// so any float32 rounding is amplified; the check starts at d = 3.
		if d < 3 {
			continue
		}
		dy64, dy := s.rand(5, d)
		dx, dw := s.poisoned(tensor.F32, 5, d), tensor.Zeros(s.b, tensor.F32, d)
		must(t, s.b.RMSNormBackward(dx, dw, dy, x, w, inv))
		inv64 := tensor.Pow(tensor.AddScalar(tensor.Mean(tensor.Square(x64), -1, true), 1e-5), -0.5)
		g := tensor.Mul(dy64, w64)
		dot := tensor.Sum(tensor.Mul(g, x64), -1, true)
		wantDx := tensor.Sub(tensor.Mul(g, inv64), tensor.Mul(x64, tensor.Scale(tensor.Mul(tensor.Mul(tensor.Mul(inv64, inv64), inv64), dot), 1/float64(d))))
		wantDw := tensor.Sum(tensor.Mul(tensor.Mul(dy64, x64), inv64), 0, false)
		s.compare(fmt.Sprintf("rmsnorm dx d=%d", d), dx, wantDx, s.tol.Fused)
		s.compare(fmt.Sprintf("rmsnorm dw d=%d", d), dw, wantDw, s.tol.Fused)
	}
}

func (s *suite) rope(t *testing.T) {
	B, T, H, D := 2, 5, 3, 8
	x64, x := s.rand(B, T, H, D)
	ang64, _ := s.rand(B, T, D/2)
	cos64, sin64 := tensor.Unary(ang64, tensor.OpCos), tensor.Unary(ang64, tensor.OpSin)
	cos, sin := tensor.FromHost(s.b, tensor.F32, cos64.F32(), B, T, D/2), tensor.FromHost(s.b, tensor.F32, sin64.F32(), B, T, D/2)
	cos64, sin64 = cos.To(tensor.F64), sin.To(tensor.F64)
	cos64 = tensor.FromHost(ref, tensor.F64, cos64.F64(), B, T, D/2)
	sin64 = tensor.FromHost(ref, tensor.F64, sin64.F64(), B, T, D/2)
	for _, inverse := range []bool{false, true} {
		out := s.poisoned(tensor.F32, B, T, H, D)
		must(t, s.b.RoPE(out, x, cos, sin, inverse))
		// Composite: x·cos + rotate_half(x)·sin with rotate_half = [−x2, x1].
		c := tensor.Concat(-1, cos64, cos64).Unsqueeze(2)
		sn := tensor.Concat(-1, sin64, sin64).Unsqueeze(2)
		if inverse {
			sn = tensor.Neg(sn)
		}
		halves := tensor.Split(x64, -1, D/2, D/2)
		rot := tensor.Concat(-1, tensor.Neg(halves[1]), halves[0])
		want := tensor.Add(tensor.Mul(x64, c), tensor.Mul(rot, sn))
		s.compare(fmt.Sprintf("rope inverse=%v", inverse), out, want, s.tol.Fused)
	}
}

func (s *suite) swiglu(t *testing.T) {
	for _, n := range sizes {
		g64, g := s.rand(2, n)
		u64, u := s.rand(2, n)
		out := s.poisoned(tensor.F32, 2, n)
		must(t, s.b.SwiGLU(out, g, u))
		s.compare(fmt.Sprintf("swiglu n=%d", n), out, tensor.Mul(tensor.Silu(g64), u64), s.tol.Fused)
		dy64, dy := s.rand(2, n)
		dg, du := s.poisoned(tensor.F32, 2, n), s.poisoned(tensor.F32, 2, n)
		must(t, s.b.SwiGLUBackward(dg, du, dy, g, u))
		s.compare(fmt.Sprintf("swiglu dgate n=%d", n), dg, tensor.Mul(tensor.Mul(dy64, u64), tensor.SiluGrad(g64)), s.tol.Fused)
		s.compare(fmt.Sprintf("swiglu dup n=%d", n), du, tensor.Mul(dy64, tensor.Silu(g64)), s.tol.Fused)
	}
}

func (s *suite) embedding(t *testing.T) {
	V, D := 11, 17
	tab64, tab := s.rand(V, D)
	ids := []int64{3, 0, 10, 3, 7}
	idT := tensor.FromHost(s.b, tensor.I64, ids, len(ids))
	out := s.poisoned(tensor.F32, len(ids), D)
	must(t, s.b.Embedding(out, tab, idT))
	rows := make([]*tensor.Tensor, len(ids))
	for i, id := range ids {
		rows[i] = tab64.Narrow(0, int(id), 1)
	}
	s.compare("embedding", out, tensor.Concat(0, rows...), 0)

	dy64, dy := s.rand(len(ids), D)
	dtab := tensor.Zeros(s.b, tensor.F32, V, D)
	must(t, s.b.EmbeddingBackward(dtab, dy, idT))
	want := tensor.Zeros(ref, tensor.F64, V, D)
	for i, id := range ids {
		r := want.Narrow(0, int(id), 1)
		r.CopyFrom(tensor.Add(r, dy64.Narrow(0, i, 1)))
	}
	s.compare("embedding backward (scatter-add)", dtab, want, s.tol.Elementwise)
}

// attentionRef materialises the masked score matrix (the slow, obvious way).
func attentionRef(q, k, v *tensor.Tensor, p tensor.AttentionParams, allowed func(b, t, s int) bool) *tensor.Tensor {
	B, T, Hq, D := q.Dim(0), q.Dim(1), q.Dim(2), q.Dim(3)
	S, Hkv := k.Dim(1), k.Dim(2)
	out := tensor.Zeros(ref, tensor.F64, B, T, Hq, D)
	qs, ks, vs, os := q.F64(), k.F64(), v.F64(), tensor.F64Data(out)
	for b := 0; b < B; b++ {
		for h := 0; h < Hq; h++ {
			kh := h / (Hq / Hkv)
			for t := 0; t < T; t++ {
				sc := make([]float64, S)
				mx := math.Inf(-1)
				for s := 0; s < S; s++ {
					sc[s] = math.Inf(-1)
					if !allowed(b, t, s) {
						continue
					}
					var dot float64
					for j := 0; j < D; j++ {
						dot += qs[((b*T+t)*Hq+h)*D+j] * ks[((b*S+s)*Hkv+kh)*D+j]
					}
					sc[s] = dot * float64(p.Scale)
					if c := float64(p.Softcap); c != 0 { // Gemma 2: capped before masking
						sc[s] = c * math.Tanh(sc[s]/c)
					}
					mx = math.Max(mx, sc[s])
				}
				if math.IsInf(mx, -1) {
					continue
				}
				var z float64
				for s := range sc {
					sc[s] = math.Exp(sc[s] - mx)
					z += sc[s]
				}
				for s := range sc {
					for j := 0; j < D; j++ {
						os[((b*T+t)*Hq+h)*D+j] += sc[s] / z * vs[((b*S+s)*Hkv+kh)*D+j]
					}
				}
			}
		}
	}
	return out
}

func (s *suite) attention(t *testing.T) {
	s.attentionAt(t, 2, 9, 4, 2, 8, 0)
	// Longer than one query block of a blocked kernel (64 on the CPU) and
	// not a multiple of it.
	s.attentionAt(t, 1, 150, 2, 1, 16, 0)
	if tensor.SupportsSoftcap(s.b) {
		// Soft-capped scores (Gemma 2): cap 1.5 bends most of them. D 32
		// with causal S = T also reaches tiled kernels (the CUDA backend's
		// attention.cu), D 8 the per-row ones.
		s.attentionAt(t, 2, 9, 4, 2, 8, 1.5)
		s.attentionAt(t, 2, 37, 2, 1, 32, 1.5)
	}
}

// attentionAt runs every mask at one size, the scores soft-capped when
// softcap is not 0.
func (s *suite) attentionAt(t *testing.T, B, T, Hq, Hkv, D int, softcap float32) {
	mask := make([]int64, B*T)
	seg := make([]int64, B*T)
	split := make([]int64, B*T) // documents in several runs: 0,0,1,1,0,0,1,1,...
	for i := range mask {
		mask[i] = 1
		if i >= B*T-3 {
			mask[i] = 0 // last row right-padded by 3
		}
		if i%T >= 4 {
			seg[i] = 1
		}
		if i%T >= T/2+3 {
			seg[i] = 2
		}
		split[i] = int64((i % T / 2) % 2)
	}
	// holes: the first row left-padded by 2, the others with a masked key
	// in the middle (the kept keys no longer one interval)
	holes := make([]int64, B*T)
	for i := range holes {
		holes[i] = 1
		if (i < T && i < 2) || (i >= T && i%T == T/2) {
			holes[i] = 0
		}
	}
	for _, c := range []struct {
		name string
		p    tensor.AttentionParams
	}{
		{"left padding and holes", tensor.AttentionParams{Causal: true, KeyMask: tensor.FromHost(s.b, tensor.I64, holes, B, T)}},
		{"causal", tensor.AttentionParams{Causal: true}},
		{"padding", tensor.AttentionParams{Causal: true, KeyMask: tensor.FromHost(s.b, tensor.I64, mask, B, T)}},
		{"window", tensor.AttentionParams{Causal: true, Window: 3}},
		{"bidirectional", tensor.AttentionParams{}},
		{"split documents", tensor.AttentionParams{Causal: true, Segments: tensor.FromHost(s.b, tensor.I64, split, B, T)}},
		{"padding+packed+window", tensor.AttentionParams{Causal: true, Window: 5, KeyMask: tensor.FromHost(s.b, tensor.I64, mask, B, T), Segments: tensor.FromHost(s.b, tensor.I64, seg, B, T)}},
		{"packed", tensor.AttentionParams{Causal: true, Segments: tensor.FromHost(s.b, tensor.I64, seg, B, T)}},
		// int32, as the trainer's loader uploads them (read in place on a GPU)
		{"padding+packed int32", tensor.AttentionParams{Causal: true, KeyMask: tensor.FromHost(s.b, tensor.I32, int32s(mask), B, T), Segments: tensor.FromHost(s.b, tensor.I32, int32s(seg), B, T)}},
	} {
		p := c.p
		p.Scale = float32(1 / math.Sqrt(float64(D)))
		p.Softcap = softcap
		label := c.name
		if softcap != 0 {
			label = fmt.Sprintf("%s softcap %g", c.name, softcap)
		}
		q64, q := s.rand(B, T, Hq, D)
		k64, k := s.rand(B, T, Hkv, D)
		v64, v := s.rand(B, T, Hkv, D)
		out, lse := s.poisoned(tensor.F32, B, T, Hq, D), s.poisoned(tensor.F32, B, Hq, T)
		must(t, s.b.Attention(out, lse, q, k, v, p))
		allowed := func(b, tt, ss int) bool {
			if p.Causal && ss > tt {
				return false
			}
			if p.Window > 0 && tt-ss >= p.Window {
				return false
			}
			if km := mask; p.KeyMask != nil {
				if c.name == "left padding and holes" {
					km = holes
				}
				if km[b*T+ss] == 0 {
					return false
				}
			}
			if p.Segments != nil {
				ids := seg
				if c.name == "split documents" {
					ids = split
				}
				if ids[b*T+ss] != ids[b*T+tt] {
					return false
				}
			}
			return true
		}
		s.compare(fmt.Sprintf("attention %s T=%d", label, T), out, attentionRef(q64, k64, v64, p, allowed), s.tol.Fused)

		// Backward against central differences of the float64 reference
		// along a random direction: ⟨dq,δq⟩+⟨dk,δk⟩+⟨dv,δv⟩ = d/dε f(x+εδ).
		dout64, dout := s.rand(B, T, Hq, D)
		dq, dk, dv := s.poisoned(tensor.F32, B, T, Hq, D), s.poisoned(tensor.F32, B, T, Hkv, D), s.poisoned(tensor.F32, B, T, Hkv, D)
		must(t, s.b.AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v, p))
		dirs := [3]*tensor.Tensor{}
		for i, sh := range [][]int{{B, T, Hq, D}, {B, T, Hkv, D}, {B, T, Hkv, D}} {
			dirs[i], _ = s.rand(sh...)
		}
		f := func(eps float64) float64 {
			o := attentionRef(tensor.Add(q64, tensor.Scale(dirs[0], eps)), tensor.Add(k64, tensor.Scale(dirs[1], eps)), tensor.Add(v64, tensor.Scale(dirs[2], eps)), p, allowed)
			return tensor.SumAll(tensor.Mul(o, dout64)).Item()
		}
		num := (f(1e-5) - f(-1e-5)) / 2e-5
		ana := 0.0
		for i, g := range []*tensor.Tensor{dq, dk, dv} {
			ana += tensor.SumAll(tensor.Mul(tensor.FromHost(ref, tensor.F64, g.F64(), g.Shape()...), dirs[i])).Item()
		}
		if e := math.Abs(ana-num) / math.Max(math.Abs(num), 1); e > 1e-4 {
			t.Errorf("attention %s T=%d backward: directional derivative %g, finite difference %g", label, T, ana, num)
		}
	}
}

func (s *suite) crossEntropy(t *testing.T) {
	for _, V := range []int{5, 17, 130} {
		x64, x := s.rand(6, V)
		labels := []int64{0, -100, int64(V - 1), 2, -100, 1}
		lab := tensor.FromHost(s.b, tensor.I64, labels, 6)
		loss, dl := s.poisoned(tensor.F32, 6), s.poisoned(tensor.F32, 6, V)
		must(t, s.b.CrossEntropy(loss, dl, x, lab, -100, 0.25))
		logp := softmaxRef(x64, true).F64()
		wantLoss := make([]float64, 6)
		wantDl := make([]float64, 6*V)
		for i, l := range labels {
			if l == -100 {
				continue
			}
			wantLoss[i] = -logp[i*V+int(l)]
			for j := 0; j < V; j++ {
				wantDl[i*V+j] = 0.25 * math.Exp(logp[i*V+j])
			}
			wantDl[i*V+int(l)] -= 0.25
		}
		s.compare(fmt.Sprintf("cross-entropy loss V=%d", V), loss, tensor.FromHost(ref, tensor.F64, wantLoss, 6), s.tol.Fused)
		s.compare(fmt.Sprintf("cross-entropy dlogits V=%d", V), dl, tensor.FromHost(ref, tensor.F64, wantDl, 6, V), s.tol.Fused)
	}
}

// int32s narrows small integers (masks, document ids).
func int32s(v []int64) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}
