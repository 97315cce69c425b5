package parity

import (
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// TestParityCPUBF16 runs the LoRA quantities on the CPU's precision bf16
// (tensor.CPUBF16: every matrix product of 32 rows and columns or more,
// the attention's included, rounds both operands to bf16 and sums in
// float32; activations, softmax, norms and the loss stay float32) against transformers' float32 fixtures, at the
// bound of the GPU's bf16-operand path (TestParityCUDABF16), 2e-2
// relative on the LoRA logits, the loss and every LoRA gradient: the same
// roundings of the same products. It runs on every CPU (the Go kernel
// where there is no AVX512_BF16, slow but the same contract), and checks
// that the roundings happened: the gradients must differ from the float32
// backend's by more than float32 reordering could (1e-5 relative), so a
// backend that silently computed in float32 fails.
func TestParityCPUBF16(t *testing.T) {
	const tolBF16, minChange = 2e-2, 1e-5
	be := tensor.CPUBF16()
	for _, dir := range testutil.Folders("../testdata/fixtures", "inputs.safetensors", "FTUNE_FIXTURES") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			skipUnsupported(t, dir, be)
			fx := openFixture(t, dir)
			if _, ok := fx.file(t, "grads_lora.safetensors"); !ok {
				t.Skipf("%s: no grads_lora.safetensors", filepath.Base(dir))
			}
			batchFor := func(m *nn.Model) nn.Batch { return cudaBatch(t, fx, m.Backend) }
			tolOut, tolGrad := fx.bf16Bounds(t, tolBF16, tolBF16, 1.25)
			checkGradsLoRA(t, fx, be, batchFor, tolOut, tolGrad, "cpu bf16 ")

			f32 := loraGrads(t, fx, tensor.CPUDefault(), batchFor)
			bf16 := loraGrads(t, fx, be, batchFor)
			worst := 0.0
			for name, g := range f32 {
				worst = max(worst, testutil.RelFrobenius(bf16[name], g))
			}
			t.Logf("cpu bf16 against float32: largest LoRA gradient change %.3g", worst)
			if !(worst > minChange) {
				t.Fatalf("cpu bf16 LoRA gradients within %.3g of float32's: the products were not rounded to bf16", worst)
			}
		})
	}
}

// loraGrads is one forward and backward of the fixture's initial adapter on
// be, returning each adapter parameter's gradient.
func loraGrads(t *testing.T, fx *fixture, be tensor.Backend, batchFor func(*nn.Model) nn.Batch) map[string][]float64 {
	t.Helper()
	m, a, batch := loraSetupAs(t, fx.dir, batchFor, be, 0)
	tp := autograd.NewTape()
	out, err := m.Forward(tp, batch, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float64{}
	for name, p := range a.Params() {
		if p.Grad == nil {
			t.Fatalf("%s: no gradient", name)
		}
		grads[name] = p.Grad.F64()
	}
	return grads
}
