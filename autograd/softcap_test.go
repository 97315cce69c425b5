package autograd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// TestGradSoftcap: the soft-cap op and the fused LM-head cross-entropy
// with a soft-cap against finite differences, and the fused loss equal to
// the plain composition (matmul, soft-cap, cross-entropy). The cap (1.2)
// is small enough against these logits to bend them.
func TestGradSoftcap(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 21))
	gradCheck(t, "softcap", func(tp *Tape, in []*Var) *Var { return tp.Softcap(in[0], 1.2) }, tensor.Scale(randT(r, 3, 4), 2))
	labels := tensor.FromHost(cpu, tensor.I64, []int64{2, -100, 0, 4, 1}, 5)
	gradCheck(t, "linear_softcap_cross_entropy", func(tp *Tape, in []*Var) *Var {
		l, err := tp.LinearSoftcapCrossEntropy(in[0], in[1], labels, -100, 2, 1.2)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, randT(r, 5, 3), randT(r, 6, 3))
	h, w := Const(randT(r, 5, 3)), Const(randT(r, 6, 3))
	var tp *Tape
	fused, err := tp.LinearSoftcapCrossEntropy(h, w, labels, -100, 2, 1.2)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := tp.CrossEntropy(tp.Softcap(tp.MatMul(h, w, false, true), 1.2), labels, -100)
	if err != nil {
		t.Fatal(err)
	}
	uncapped, err := tp.CrossEntropy(tp.MatMul(h, w, false, true), labels, -100)
	if err != nil {
		t.Fatal(err)
	}
	f, p, u := fused.Value.Item(), plain.Value.Item(), uncapped.Value.Item()
	if math.Abs(f-p) > 1e-12 || math.Abs(f-u) < 1e-2 {
		t.Fatalf("fused %v, composed %v, uncapped %v: want fused = composed ≠ uncapped", f, p, u)
	}
}
