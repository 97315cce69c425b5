package lora

import (
	"math"
	"testing"

	"github.com/ftune/ftune/quant/nf4"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// TestQLoRAMatchesDequantizedBase: a model loaded in NF4 computes exactly
// what the same model computes with the dequantized weights in float32 (the
// 4-bit weights are expanded inside the GEMM, nothing else changes), and
// LoRA gradients flow through the NF4 base.
func TestQLoRAMatchesDequantizedBase(t *testing.T) {
	q, err := nn.Load(fixture, nn.LoadOptions{Quantize: nf4.Quantizer(tensor.CPUDefault())})
	if err != nil {
		t.Fatal(err)
	}
	if dt := q.Layers[0].Attn.Q.Weight.Value.DType(); dt != tensor.NF4 {
		t.Fatalf("q_proj held as %v, want NF4", dt)
	}
	ref, err := nn.Load(fixture, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Give the reference the dequantized weights.
	qp := q.Params()
	for name, p := range ref.Params() {
		if qp[name].Value.DType() == tensor.NF4 {
			p.Value.CopyFrom(qp[name].Value.To(tensor.F32))
		}
	}
	ids := tensor.FromHost(q.Backend, tensor.I64, []int64{5, 9, 2, 7, 100, 3}, 2, 3)
	labels := ids
	var grads [2]map[string][]float64
	var logits [2][]float64
	for i, m := range []*nn.Model{q, ref} {
		a, err := New(m, NewConfig(4, 8, "all-linear"), "default", 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range a.Layers {
			tensor.F32Data(l.B.Value)[0] = 0.1 // a non-zero delta
		}
		if err := a.Attach(m); err != nil {
			t.Fatal(err)
		}
		tp := autograd.NewTape()
		out, err := m.Forward(tp, nn.Batch{InputIDs: ids, Labels: labels}, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		logits[i] = out.Logits.Value.F64()
		grads[i] = map[string][]float64{}
		for name, p := range a.Params() {
			grads[i][name] = p.Grad.F64()
		}
	}
	if e := testutil.RelFrobenius(logits[0], logits[1]); e > 1e-6 {
		t.Errorf("NF4 logits differ from the dequantized float32 model by %.3g", e)
	}
	worst := 0.0
	for name, g := range grads[0] {
		worst = math.Max(worst, testutil.RelFrobenius(g, grads[1][name]))
	}
	if worst > 1e-5 {
		t.Errorf("NF4 LoRA gradients differ by %.3g", worst)
	}
}
