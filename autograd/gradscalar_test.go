package autograd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// The loss's gradient is known on the host when it is the seed scaled by
// the trainer's factor (Backward(Scale(loss, f))): the value gradScalar
// gives then is bit for bit what reading the tensor gives, in float32 and
// float64, and the fused loss's gradients are those of a run that reads it
// (the same factor reached through a Mul, which leaves it unknown).
func TestLossGradientKnownOnTheHost(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, f := range []float64{1, 0.5, 1.0 / 3, 0.1 * 7} {
			h0, w0 := randT(r, 6, 4).To(dt), randT(r, 5, 4).To(dt)
			labels := tensor.FromHost(cpu, tensor.I64, []int64{0, 4, -100, 2, 1, 3}, 6)
			run := func(viaMul bool) (dh []float64, known bool) {
				tp := NewTape()
				tp.RetainGrads = true
				h, w := Param(h0.Clone(), "h"), Param(w0.Clone(), "w")
				loss, err := tp.LinearCrossEntropy(h, w, labels, -100, 4)
				if err != nil {
					t.Fatal(err)
				}
				var top *Var
				if viaMul {
					top = tp.Mul(loss, Const(tensor.Full(cpu, dt, f)))
				} else {
					top = tp.Scale(loss, f)
				}
				if err := tp.Backward(top); err != nil {
					t.Fatal(err)
				}
				if loss.gradKnown && loss.gradValue != loss.Grad.Item() {
					t.Errorf("%v f=%v: known gradient %v, the tensor holds %v", dt, f, loss.gradValue, loss.Grad.Item())
				}
				return h.Grad.F64(), loss.gradKnown
			}
			a, known := run(false)
			b, unknown := run(true)
			if !known || unknown {
				t.Errorf("%v f=%v: known through Scale %v, through Mul %v; want true, false", dt, f, known, unknown)
			}
			for i := range a {
				if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
					t.Fatalf("%v f=%v: dh[%d] %v with the host's factor, %v read from the tensor", dt, f, i, a[i], b[i])
				}
			}
		}
	}
}
