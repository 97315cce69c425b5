package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGeGLUReference: the float32 CPU kernel against a direct float64
// evaluation of transformers' gelu_pytorch_tanh (and two values PyTorch
// prints: F.gelu(1., approximate="tanh") = 0.8411920070648193 and at -2
// -0.04540228843688965), forward and both gradients, on a size that the
// CPU splits across workers.
func TestGeGLUReference(t *testing.T) {
	ref := func(x float64) float64 {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*math.Pow(x, 3))))
	}
	for _, c := range []struct{ x, want float64 }{{1, 0.8411920070648193}, {-2, -0.04540228843688965}} {
		if got := ref(c.x); math.Abs(got-c.want) > 1e-7 {
			t.Fatalf("reference gelu_tanh(%g) = %.10g, PyTorch gives %.10g", c.x, got, c.want)
		}
	}
	be := CPUDefault()
	r := rand.New(rand.NewPCG(1, 2))
	const n = 10007
	g, u, dy := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g {
		g[i], u[i], dy[i] = float32(3*r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	gt, ut, dyt := FromHost(be, F32, g, n), FromHost(be, F32, u, n), FromHost(be, F32, dy, n)
	out := GeGLU(gt, ut).F32()
	dg, du := New(be, F32, n), New(be, F32, n)
	if err := be.GeGLUBackward(dg, du, dyt, gt, ut); err != nil {
		t.Fatal(err)
	}
	dgv, duv := dg.F32(), du.F32()
	const h = 1e-5
	worst := 0.0
	for i := range g {
		x := float64(g[i])
		y := ref(x)
		dydx := (ref(x+h) - ref(x-h)) / (2 * h) // finite difference of the reference
		for _, e := range []struct{ got, want float64 }{
			{float64(out[i]), y * float64(u[i])},
			{float64(duv[i]), float64(dy[i]) * y},
			{float64(dgv[i]), float64(dy[i]) * float64(u[i]) * dydx},
		} {
			worst = max(worst, math.Abs(e.got-e.want)/(1+math.Abs(e.want)))
		}
	}
	if worst > 1e-5 {
		t.Fatalf("GeGLU float32 kernel differs from the float64 reference by %.3g (relative), want ≤ 1e-5", worst)
	}
	// Far tails: σ(2v) underflows or exp overflows; no NaN, gelu → 0 or g.
	ext := FromHost(be, F32, []float32{-100, -20, 20, 100}, 4)
	ones := FromHost(be, F32, []float32{1, 1, 1, 1}, 4)
	eo := GeGLU(ext, ones).F32()
	dge := New(be, F32, 4)
	if err := be.GeGLUBackward(dge, nil, ones, ext, ones); err != nil {
		t.Fatal(err)
	}
	dgv4 := dge.F32()
	for i, want := range []float32{0, 0, 20, 100} {
		if math.Abs(float64(eo[i]-want)) > 1e-5 || math.IsNaN(float64(dgv4[i])) || math.Abs(float64(dgv4[i])-float64(i/2)) > 1e-5 {
			t.Fatalf("gelu_tanh at %v: %v, gradient %v; want %v and %v", []float32{-100, -20, 20, 100}[i], eo[i], dgv4[i], want, i/2)
		}
	}
	// A gradient nobody asked for may be nil.
	if err := be.GeGLUBackward(nil, du, dyt, gt, ut); err != nil {
		t.Fatal(err)
	}
}

// noGeGLU is a backend without the optional GeGLU methods.
type noGeGLU struct{ Backend }

func TestGeGLUUnsupportedBackendNamed(t *testing.T) {
	if !SupportsGeGLU(CPUDefault()) {
		t.Fatal("the CPU backend must support GeGLU")
	}
	if SupportsGeGLU(noGeGLU{CPUDefault()}) {
		t.Fatal("a backend without GeGLU methods reported as supporting it")
	}
}
