package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// softcapCase is a small attention problem with every mask the CPU kernels
// handle: GQA (4 query heads on 2 KV heads), a KV-cache offset, a window,
// padding in the middle of the keys and documents split in several runs.
type softcapCase struct {
	B, T, S, Hq, Hkv, D int
	p                   AttentionParams
}

func newSoftcapCase(be Backend, cap float32) softcapCase {
	const B, T, S = 2, 9, 12
	keep := make([]int64, B*S)
	seg := make([]int64, B*S)
	for i := range keep {
		keep[i] = 1
		seg[i] = int64(i % S / 5)
	}
	keep[5] = 0                 // padding in the middle of row 0
	seg[S+10], seg[S+11] = 0, 0 // row 1: document 0 comes back at the end
	return softcapCase{B: B, T: T, S: S, Hq: 4, Hkv: 2, D: 8, p: AttentionParams{
		Scale: 0.9, Softcap: cap, Causal: true, QueryOffset: S - T, Window: 6,
		KeyMask: FromHost(be, I64, keep, B, S), Segments: FromHost(be, I64, seg, B, S)}}
}

func randF64(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	return x
}

// naiveSoftcapAttention is the formula written out: scores
// c·tanh(scale·q·k/c), masked, softmax, times V.
func naiveSoftcapAttention(c softcapCase, q, k, v []float64) []float64 {
	m, _ := newAttnMask(c.p, c.B, c.T, c.S)
	out := make([]float64, c.B*c.T*c.Hq*c.D)
	g := c.Hq / c.Hkv
	for b := 0; b < c.B; b++ {
		for h := 0; h < c.Hq; h++ {
			for t := 0; t < c.T; t++ {
				qo := ((b*c.T+t)*c.Hq + h) * c.D
				w := make([]float64, c.S)
				mx := math.Inf(-1)
				for s := 0; s < c.S; s++ {
					w[s] = math.Inf(-1)
					if !m.allowed(b, t, s) {
						continue
					}
					ko := ((b*c.S+s)*c.Hkv + h/g) * c.D
					var dot float64
					for j := 0; j < c.D; j++ {
						dot += q[qo+j] * k[ko+j]
					}
					w[s] = dot * float64(c.p.Scale)
					if c.p.Softcap > 0 {
						w[s] = float64(c.p.Softcap) * math.Tanh(w[s]/float64(c.p.Softcap))
					}
					mx = math.Max(mx, w[s])
				}
				var sum float64
				for s := range w {
					w[s] = math.Exp(w[s] - mx)
					sum += w[s]
				}
				for s := 0; s < c.S; s++ {
					vo := ((b*c.S+s)*c.Hkv + h/g) * c.D
					for j := 0; j < c.D; j++ {
						out[qo+j] += w[s] / sum * v[vo+j]
					}
				}
			}
		}
	}
	return out
}

func maxAbsDiff(a, b []float64) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// TestAttentionSoftcap: with a soft-cap the CPU attention (float64 and
// float32 kernels) computes softmax(c·tanh(scale·QKᵀ/c) + mask)·V under
// every mask, and the cap matters at these sizes (without it the output
// moves by far more than the tolerance).
func TestAttentionSoftcap(t *testing.T) {
	be := CPUDefault()
	c := newSoftcapCase(be, 1.5)
	r := rand.New(rand.NewPCG(7, 8))
	q, k, v := randF64(r, c.B*c.T*c.Hq*c.D), randF64(r, c.B*c.S*c.Hkv*c.D), randF64(r, c.B*c.S*c.Hkv*c.D)
	want := naiveSoftcapAttention(c, q, k, v)
	uncapped := c
	uncapped.p.Softcap = 0
	if d := maxAbsDiff(naiveSoftcapAttention(uncapped, q, k, v), want); d < 0.05 {
		t.Fatalf("the cap moves the output by %g only: the test would not see it", d)
	}
	for _, dt := range []DType{F64, F32} {
		qt, kt, vt := f64(be, q, c.B, c.T, c.Hq, c.D).To(dt), f64(be, k, c.B, c.S, c.Hkv, c.D).To(dt), f64(be, v, c.B, c.S, c.Hkv, c.D).To(dt)
		out, _ := Attention(qt, kt, vt, c.p)
		tol := 1e-12
		if dt == F32 {
			tol = 2e-6
		}
		if d := maxAbsDiff(out.F64(), want); d > tol {
			t.Errorf("%v: output differs from the formula by %g (tolerance %g)", dt, d, tol)
		}
	}
}

// TestAttentionSoftcapGradients: the float64 backward agrees with central
// finite differences of L = Σ out·W, and the float32 backward with the
// float64 one, so d/ds c·tanh(s/c) = 1 − tanh² is in both.
func TestAttentionSoftcapGradients(t *testing.T) {
	be := CPUDefault()
	c := newSoftcapCase(be, 1.5)
	r := rand.New(rand.NewPCG(9, 10))
	x := [3][]float64{randF64(r, c.B*c.T*c.Hq*c.D), randF64(r, c.B*c.S*c.Hkv*c.D), randF64(r, c.B*c.S*c.Hkv*c.D)}
	shapes := [3][]int{{c.B, c.T, c.Hq, c.D}, {c.B, c.S, c.Hkv, c.D}, {c.B, c.S, c.Hkv, c.D}}
	w := randF64(r, c.B*c.T*c.Hq*c.D)
	grads := func(dt DType) [3][]float64 {
		var in [3]*Tensor
		for i := range in {
			in[i] = f64(be, x[i], shapes[i]...).To(dt)
		}
		out, lse := Attention(in[0], in[1], in[2], c.p)
		dout := f64(be, w, shapes[0]...).To(dt)
		dq, dk, dv := New(be, dt, shapes[0]...), New(be, dt, shapes[1]...), New(be, dt, shapes[2]...)
		if err := be.AttentionBackward(dq, dk, dv, dout, out, lse, in[0], in[1], in[2], c.p); err != nil {
			t.Fatal(err)
		}
		return [3][]float64{dq.F64(), dk.F64(), dv.F64()}
	}
	loss := func() float64 {
		out, _ := Attention(f64(be, x[0], shapes[0]...), f64(be, x[1], shapes[1]...), f64(be, x[2], shapes[2]...), c.p)
		var l float64
		for i, o := range out.F64() {
			l += o * w[i]
		}
		return l
	}
	g64, g32 := grads(F64), grads(F32)
	const h = 1e-6
	for i, name := range []string{"dq", "dk", "dv"} {
		for _, j := range []int{0, 13, 77, len(x[i]) / 2, len(x[i]) - 1} {
			old := x[i][j]
			x[i][j] = old + h
			up := loss()
			x[i][j] = old - h
			down := loss()
			x[i][j] = old
			fd := (up - down) / (2 * h)
			if d := math.Abs(fd - g64[i][j]); d > 1e-7*(1+math.Abs(fd)) {
				t.Errorf("%s[%d]: backward %g, finite difference %g", name, j, g64[i][j], fd)
			}
		}
		if d := maxAbsDiff(g32[i], g64[i]); d > 2e-5 {
			t.Errorf("%s: float32 backward differs from float64 by %g", name, d)
		}
	}
}

// TestSoftcapOp: the float32 kernel against math.Tanh over the whole range
// (0, tiny, moderate, past the cap, ±Inf, values whose exp overflows), and
// its backward 1 − (y/c)².
func TestSoftcapOp(t *testing.T) {
	be := CPUDefault()
	const c = 30
	xs := []float64{0, 1e-8, -1e-8, 0.5, -3, 29, -31, 100, -100, 1e4, -1e30, 1e30, math.Inf(1), math.Inf(-1)}
	for _, dt := range []DType{F32, F64} {
		y := Softcap(f64(be, xs, len(xs)).To(dt), c).F64()
		for i, x := range xs {
			want := c * math.Tanh(x/c)
			if d := math.Abs(y[i] - want); d > 4e-6 || math.IsNaN(y[i]) {
				t.Errorf("%v: softcap(%g) = %g, want %g", dt, x, y[i], want)
			}
		}
		g := f64(be, []float64{2, 2, 2}, 3).To(dt)
		out := f64(be, []float64{0, 15, -30}, 3).To(dt)
		SoftcapBackwardInPlace(g, out, c)
		if got := g.F64(); got[0] != 2 || math.Abs(got[1]-1.5) > 1e-6 || got[2] != 0 {
			t.Errorf("%v: backward %v, want [2 1.5 0]", dt, got)
		}
	}
	// Relative precision near float32's across the range, including the
	// small |x/c| where c − 2c/(1 + e^{2x/c}) would cancel (Gemma 2's caps
	// are 50 and 30, scores and logits mostly far below).
	for _, c := range []float64{50, 1e4} {
		var xs []float64
		for x := 1e-3; x < 4*c; x *= 1.37 {
			xs = append(xs, x, -x)
		}
		y := Softcap(f64(be, xs, len(xs)).To(F32), c).F64()
		for i, x := range xs {
			want := c * math.Tanh(x/c)
			if e := math.Abs(y[i]-want) / math.Abs(want); e > 6e-7 {
				t.Errorf("c %g: softcap(%g) = %g, want %g (relative error %.2g)", c, x, y[i], want, e)
			}
		}
	}
	if err := be.Softcap(New(be, F32, 2), New(be, F32, 2), 0); err == nil {
		t.Error("a cap of 0 must be refused")
	}
}

func f64(be Backend, x []float64, shape ...int) *Tensor { return FromHost(be, F64, x, shape...) }
