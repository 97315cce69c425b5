package cudabackend

import (
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

	a, ac := pair(512, 768)
	w, wc := pair(1024, 768)
	check("matmul f32 512x1024x768", tensor.MatMul(a, w, false, true), tensor.MatMul(ac, wc, false, true), 1e-5)
	check("matmul bf16 mode 512x1024x768", tensor.MatMul(on(b16, a), on(b16, w), false, true), tensor.MatMul(ac, wc, false, true), 1e-2)

	x, xc := pair(64, 4096)
	g, gc := pair(4096)
	y, inv := tensor.RMSNorm(x, g, 1e-5)
	yc, invc := tensor.RMSNorm(xc, gc, 1e-5)
	check("rmsnorm 64x4096", y, yc, 1e-5)
	check("rmsnorm invRMS", inv, invc, 1e-5)
	check("softmax 64x4096", tensor.Softmax(x), tensor.Softmax(xc), 1e-5)
	check("swiglu 64x4096", tensor.SwiGLU(x, x), tensor.SwiGLU(xc, xc), 1e-5)
	check("geglu 64x4096", tensor.GeGLU(x, x), tensor.GeGLU(xc, xc), 1e-5)
	check("softcap 64x4096 (cap 1.5)", tensor.Softcap(x, 1.5), tensor.Softcap(xc, 1.5), 1e-5)

	q, qc := pair(2, 200, 8, 64)
	k, kc := pair(2, 200, 2, 64)
	v, vc := pair(2, 200, 2, 64)
	p := tensor.AttentionParams{Causal: true, Scale: 0.125}
	o, _ := tensor.Attention(q, k, v, p)
	oc, _ := tensor.Attention(qc, kc, vc, p)
	check("attention tiled 2x200x8/2x64", o, oc, 1e-5)
	p.Window = 50
	o, _ = tensor.Attention(q, k, v, p)
	oc, _ = tensor.Attention(qc, kc, vc, p)
	check("attention masked (window 50)", o, oc, 1e-5)
	p.Softcap = 1.5 // Gemma 2's score cap, on both kernel families
	o, _ = tensor.Attention(q, k, v, p)
	oc, _ = tensor.Attention(qc, kc, vc, p)
	check("attention masked (window 50, softcap 1.5)", o, oc, 1e-5)
	p.Window = 0
	o, _ = tensor.Attention(q, k, v, p)
	oc, _ = tensor.Attention(qc, kc, vc, p)
	check("attention tiled (softcap 1.5)", o, oc, 1e-5)

	lg, lgc := pair(256, 32000)
	lab := make([]int64, 256)
	for i := range lab {
		lab[i] = int64(r.IntN(32000))
	}
	lab[3] = -100
	loss, dl := tensor.CrossEntropy(lg, tensor.FromHost(f32, tensor.I64, lab, 256), -100, 1.0/255, true)
	lossc, dlc := tensor.CrossEntropy(lgc, tensor.FromHost(cpu, tensor.I64, lab, 256), -100, 1.0/255, true)
	check("cross-entropy loss 256x32000", loss, lossc, 1e-5)
	check("cross-entropy dlogits", dl, dlc, 1e-5)
}
