package lora

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/quant/nf4"
	"github.com/ftune/ftune/tensor"
)

// The forward's row norms, from ‖W_i‖² (computed once per weight) and
// [out, r] products, against the direct ‖W + s·B·A‖ of rowNorms (what
// PEFT computes and Merge uses), for float32, bf16 and NF4 weights (the
// GEMM reads each as it is), with a trained-sized update: within 1e-5
// relative, the difference of two
// float32 sums of `in` squares accumulated in different orders (each
// within about in·2⁻²⁴ of the exact sum: 7.6e-6 at in = 128; the
// observed is smaller). A new weight tensor is not served the old one's
// cached squares.
func TestForwardNormsMatchTheDirectSum(t *testing.T) {
	be := tensor.CPUDefault()
	r := rand.New(rand.NewPCG(11, 12))
	rnd := func(scale float64, shape ...int) *tensor.Tensor {
		v := make([]float32, tensor.Shape(shape).Numel())
		for i := range v {
			v[i] = float32(r.NormFloat64() * scale)
		}
		return tensor.FromHost(be, tensor.F32, v, shape...)
	}
	const out, in, rank = 48, 128, 8
	l := &Layer{Module: "proj", Scale: 2,
		A: autograd.Param(rnd(0.1, rank, in), "a"),
		B: autograd.Param(rnd(0.05, out, rank), "b"),
	}
	check := func(what string, w *tensor.Tensor) {
		t.Helper()
		want, sum := l.rowNorms(w)
		release(sum)
		got := l.forwardNorms(w).F32()
		worst := 0.0
		for i, v := range want.F32() {
			worst = max(worst, math.Abs(float64(got[i]-v))/float64(v))
		}
		if worst > 1e-5 {
			t.Errorf("%s: worst relative difference %.3g > 1e-5", what, worst)
		}
		t.Logf("%s: worst relative difference %.3g", what, worst)
	}
	w := rnd(0.02, out, in)
	check("float32 weight", w)
	check("float32 weight, cached squares", w)
	check("bf16 weight", w.To(tensor.BF16))
	q, err := nf4.Quantizer(be)("proj.weight", w.F32(), []int{out, in})
	if err != nil {
		t.Fatal(err)
	}
	if q.DType() != tensor.NF4 {
		t.Fatalf("quantized weight is %v, want NF4", q.DType())
	}
	check("NF4 weight (QLoRA + DoRA)", q)
	check("another float32 weight", rnd(0.5, out, in))
	// With B zero (a new adapter: initMagnitude) the norms are the direct
	// sum's bit for bit: the same operations on the same numbers.
	l.B = autograd.Param(tensor.Zeros(be, tensor.F32, out, rank), "b")
	want, sum := l.rowNorms(w)
	release(sum)
	for i, v := range l.forwardNorms(w).F32() {
		if math.Float32bits(v) != math.Float32bits(want.F32()[i]) {
			t.Fatalf("B = 0: row %d norm %v, the direct sum's %v", i, v, want.F32()[i])
		}
	}
	// A zero weight with a zero update: norms 0 (m/n is then ±Inf, as in
	// PEFT), not NaN.
	zero := tensor.Zeros(be, tensor.F32, out, in)
	for i, v := range l.forwardNorms(zero).F32() {
		if v != 0 {
			t.Fatalf("row %d of a zero weight with a zero update has norm %v", i, v)
		}
	}
}
