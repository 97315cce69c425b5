package cudabackend

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestErrorFigures logs each op's normalised error against the float64 CPU
// backend on the same float32 inputs, for the device report (the
// conformance suite only says pass or fail). It also fails above the
// suite's limits, so the figures cannot drift unnoticed.
func TestErrorFigures(t *testing.T) {
	f32 := open(t, Options{})
	b16 := &Backend{dev: f32.dev, alloc: f32.alloc, opt: Options{BF16MatMul: true}}
	cpu := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(9, 9))
	// pair uploads the same values to the GPU (F32) and the CPU (F64).
	pair := func(shape ...int) (*tensor.Tensor, *tensor.Tensor) {
		v := randF32(r, tensor.Shape(shape).Numel())
		w := make([]float64, len(v))
		for i, x := range v {
			w[i] = float64(x)
		}
		return tensor.FromHost(f32, tensor.F32, v, shape...), tensor.FromHost(cpu, tensor.F64, w, shape...)
	}
	check := func(what string, got, want *tensor.Tensor, limit float64) {
		g, w := got.F64(), want.F64()
		var num, den float64
		for i := range g {
			num += (g[i] - w[i]) * (g[i] - w[i])
			den += w[i] * w[i]
		}
		e := math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-30)
		t.Logf("%-34s relative error %.3g (limit %g)", what, e, limit)
		if !(e <= limit) {
			t.Errorf("%s: relative error %.3g > %g", what, e, limit)
		}
	}
	on := func(be *Backend, x *tensor.Tensor) *tensor.Tensor {
		return tensor.FromHost(be, tensor.F32, x.F32(), x.Shape()...)
	}

	// The sizes: a model's (K 768, rows of 4096, a 32000 vocabulary); under
	// the simulator, which interprets every thread, smaller ones that keep
	// K and the rows long enough for the float32 sums' error to show.
	sz := errorFigureSizes{M: 512, N: 1024, K: 768, Rows: 64, Width: 4096, T: 200, Window: 50, Tokens: 256, Vocab: 32000}
	if simulated {
		sz = errorFigureSizes{M: 48, N: 80, K: 768, Rows: 8, Width: 4096, T: 70, Window: 20, Tokens: 16, Vocab: 4000}
	}
	a, ac := pair(sz.M, sz.K)
	w, wc := pair(sz.N, sz.K)
	mm := fmt.Sprintf("%dx%dx%d", sz.M, sz.N, sz.K)
	check("matmul f32 "+mm, tensor.MatMul(a, w, false, true), tensor.MatMul(ac, wc, false, true), 1e-5)
	check("matmul bf16 mode "+mm, tensor.MatMul(on(b16, a), on(b16, w), false, true), tensor.MatMul(ac, wc, false, true), 1e-2)

	x, xc := pair(sz.Rows, sz.Width)
	g, gc := pair(sz.Width)
	y, inv := tensor.RMSNorm(x, g, 1e-5)
	yc, invc := tensor.RMSNorm(xc, gc, 1e-5)
	rw := fmt.Sprintf(" %dx%d", sz.Rows, sz.Width)
	check("rmsnorm"+rw, y, yc, 1e-5)
	check("rmsnorm invRMS", inv, invc, 1e-5)
	check("softmax"+rw, tensor.Softmax(x), tensor.Softmax(xc), 1e-5)
	check("swiglu"+rw, tensor.SwiGLU(x, x), tensor.SwiGLU(xc, xc), 1e-5)
	check("geglu"+rw, tensor.GeGLU(x, x), tensor.GeGLU(xc, xc), 1e-5)
	check("softcap"+rw+" (cap 1.5)", tensor.Softcap(x, 1.5), tensor.Softcap(xc, 1.5), 1e-5)

	q, qc := pair(2, sz.T, 8, 64)
	k, kc := pair(2, sz.T, 2, 64)
	v, vc := pair(2, sz.T, 2, 64)
	p := tensor.AttentionParams{Causal: true, Scale: 0.125}
	o, _ := tensor.Attention(q, k, v, p)
	oc, _ := tensor.Attention(qc, kc, vc, p)
	check(fmt.Sprintf("attention tiled 2x%dx8/2x64", sz.T), o, oc, 1e-5)
	p.Window = sz.Window
	o, _ = tensor.Attention(q, k, v, p)
	oc, _ = tensor.Attention(qc, kc, vc, p)
	check(fmt.Sprintf("attention masked (window %d)", sz.Window), o, oc, 1e-5)
	p.Softcap = 1.5 // Gemma 2's score cap, on both kernel families
	o, _ = tensor.Attention(q, k, v, p)
	oc, _ = tensor.Attention(qc, kc, vc, p)
	check(fmt.Sprintf("attention masked (window %d, softcap 1.5)", sz.Window), o, oc, 1e-5)
	p.Window = 0
	o, _ = tensor.Attention(q, k, v, p)
	oc, _ = tensor.Attention(qc, kc, vc, p)
	check("attention tiled (softcap 1.5)", o, oc, 1e-5)

	lg, lgc := pair(sz.Tokens, sz.Vocab)
	lab := make([]int64, sz.Tokens)
	for i := range lab {
		lab[i] = int64(r.IntN(sz.Vocab))
	}
	lab[3] = -100
	scale := float32(1) / float32(sz.Tokens-1)
	loss, dl := tensor.CrossEntropy(lg, tensor.FromHost(f32, tensor.I64, lab, sz.Tokens), -100, scale, true)
	lossc, dlc := tensor.CrossEntropy(lgc, tensor.FromHost(cpu, tensor.I64, lab, sz.Tokens), -100, scale, true)
	check(fmt.Sprintf("cross-entropy loss %dx%d", sz.Tokens, sz.Vocab), loss, lossc, 1e-5)
	check("cross-entropy dlogits", dl, dlc, 1e-5)
}

// errorFigureSizes are TestErrorFigures' shapes: GEMM M×N×K, the fused ops'
// rows × width, attention's sequence length and window, cross-entropy's
// tokens × vocabulary.
type errorFigureSizes struct{ M, N, K, Rows, Width, T, Window, Tokens, Vocab int }
