package parity

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// TestParityCUDA is TestParity on the GPU: each fixture is loaded onto the
// CUDA backend in its float32 mode (float32 SIMT GEMMs, float32 fused
// kernels) and checked against transformers at the CPU tolerances, which
// apply because every op rounds like float32 code does (see the
// tolerances in parity_test.go and lora_test.go): logits, hidden states,
// loss, every full-model gradient, and with adapter_init attached the LoRA
// logits, loss and adapter gradients (frozen base, no base gradients).
func TestParityCUDA(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	be, err := cudabackend.Open(cudabackend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dirs := testutil.Folders("../testdata/fixtures", "inputs.safetensors", "FTUNE_FIXTURES")
	if len(dirs) == 0 {
		t.Fatal("no fixture folders found under testdata/fixtures")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { runFixtureCUDA(t, dir, be) })
	}
	if err := be.Sync(); err != nil {
		t.Fatal(err)
	}
	st := be.Stats()
	t.Logf("device allocator: peak %d bytes live, %d driver allocations", st.Peak, st.DriverAllocs)
}

// cudaBatch uploads the fixture's inputs to be.
func cudaBatch(t *testing.T, fx *fixture, be tensor.Backend) nn.Batch {
	ids, shape := ints(t, fx.inputs, "input_ids")
	B, T := shape[0], shape[1]
	batch := nn.Batch{InputIDs: tensor.FromHost(be, tensor.I64, ids, B, T)}
	if fx.inputs.Has("attention_mask") {
		m, _ := ints(t, fx.inputs, "attention_mask")
		batch.AttentionMask = tensor.FromHost(be, tensor.I64, m, B, T)
	}
	if fx.inputs.Has("labels") {
		l, _ := ints(t, fx.inputs, "labels")
		batch.Labels = tensor.FromHost(be, tensor.I64, l, B, T)
	}
	return batch
}

// skipUnsupported skips a fixture whose family the backend refuses to run
// (nn.ErrUnsupported: a kernel it lacks, such as soft-capping or GeGLU),
// naming what is missing; any other load error fails the test.
func skipUnsupported(t *testing.T, dir string, be tensor.Backend) {
	t.Helper()
	_, err := nn.Load(modelDir(t, dir), nn.LoadOptions{Backend: be})
	if errors.Is(err, nn.ErrUnsupported) {
		t.Skipf("%s: not run on this backend: %v", filepath.Base(dir), err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func runFixtureCUDA(t *testing.T, dir string, be *cudabackend.Backend) {
	skipUnsupported(t, dir, be)
	fx := openFixture(t, dir)
	t.Run("grads_lora", func(t *testing.T) {
		if _, ok := fx.file(t, "grads_lora.safetensors"); !ok {
			t.Fatalf("%s: no grads_lora.safetensors", dir)
		}
		checkGradsLoRA(t, fx, be, func(*nn.Model) nn.Batch { return cudaBatch(t, fx, be) }, tolLoRALogits, tolLoRAGrad, "")
	})
	if modelDir(t, dir) != dir {
		return // a LoRA variant: the base outputs and full gradients are its base folder's
	}
	base, haveBase := fx.file(t, "outputs_base.safetensors")
	if !haveBase {
		t.Fatalf("%s: no outputs_base.safetensors", dir)
	}
	t.Run("full", func(t *testing.T) {
		model, err := nn.Load(dir, nn.LoadOptions{Backend: be, Trainable: true})
		if err != nil {
			t.Fatal(err)
		}
		if model.Backend != tensor.Backend(be) {
			t.Fatalf("model loaded on %s, want %s", model.Backend.Name(), be.Name())
		}
		batch := cudaBatch(t, fx, be)
		tp := autograd.NewTape()
		out, err := model.Forward(tp, batch, nn.ForwardOptions{KeepHidden: base.Has("hidden_states.0")})
		if err != nil {
			t.Fatal(err)
		}
		report(t, "logits", testutil.RelFrobenius(out.Logits.Value.F64(), floats(t, base, "logits")), tolActivations)
		if base.Has("hidden_states.0") {
			worst := 0.0
			for i, h := range out.Hidden {
				e := testutil.RelFrobenius(h.Value.F64(), floats(t, base, "hidden_states."+strconv.Itoa(i)))
				if e > worst || e != e {
					worst = e
				}
			}
			report(t, "hidden_states (worst layer)", worst, tolActivations)
		}
		if out.Loss == nil || !base.Has("loss") {
			t.Fatalf("%s: no loss to compare", dir)
		}
		report(t, "loss", testutil.RelFrobenius([]float64{out.Loss.Value.Item()}, floats(t, base, "loss")), tolActivations)
		grads, ok := fx.file(t, "grads_full.safetensors")
		if !ok {
			t.Fatalf("%s: no grads_full.safetensors", dir)
		}
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		params := model.Params()
		worst, worstName := 0.0, ""
		for _, name := range grads.Names() {
			p, ok := params[name]
			if !ok || p.Grad == nil {
				t.Errorf("%s: no gradient on the model", name)
				continue
			}
			e := testutil.RelFrobenius(p.Grad.F64(), floats(t, grads, name))
			if e > worst || e != e {
				worst, worstName = e, name
			}
		}
		if len(grads.Names()) != len(params) {
			t.Errorf("fixture has %d gradients, model %d parameters", len(grads.Names()), len(params))
		}
		report(t, "grads_full ("+strings.TrimPrefix(worstName, "model.")+")", worst, tolGrad)
	})
}

// TestParityCUDABF16 runs the LoRA quantities on the GPU's bf16 path:
// every GEMM on the tensor cores with bf16 operands and float32
// accumulation (activations and weights rounded to 8 bits of mantissa,
// ≈ 4e-3 relative each), fused ops in float32. The bound for this
// path is 2e-2 relative on the loss and on every LoRA gradient tensor:
// several bf16 roundings per layer add up to ~1e-2 in the gradients.
func TestParityCUDABF16(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	be, err := cudabackend.Open(cudabackend.Options{BF16MatMul: true})
	if err != nil {
		t.Fatal(err)
	}
	const tolBF16 = 2e-2
	for _, dir := range testutil.Folders("../testdata/fixtures", "inputs.safetensors", "FTUNE_FIXTURES") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			skipUnsupported(t, dir, be)
			fx := openFixture(t, dir)
			tolOut, tolGrad := fx.bf16Bounds(t, tolBF16, tolBF16, 1.25)
			checkGradsLoRA(t, fx, be, func(*nn.Model) nn.Batch { return cudaBatch(t, fx, be) }, tolOut, tolGrad, "bf16 ")
		})
	}
}

// TestParityCUDABF16Activations runs the LoRA quantities with bf16
// activations end to end (nn.LoadOptions.DType BF16 on the bf16 backend):
// besides the GEMM operands, every op's output is stored in bf16 (8 bits
// of mantissa, ≈ 4e-3 relative per rounding) while norm statistics,
// softmax, the loss and the LoRA masters stay float32, as PEFT under
// autocast computes. One more rounding at every op boundary than
// TestParityCUDABF16's path: the bound is twice its 2e-2, or twice PyTorch
// autocast's own distance from float32 where that is more (bf16Bounds).
// Measured under ptxsim (2026-12-06) on the Llama, Qwen and Phi folders:
// logits ≤ 1.3e-2, worst LoRA gradient tensor ≤ 3.5e-2 (≤ 1.8e-2 on the
// bf16-operand path); gemma2-tiny 5.8e-2 and gemma3-tiny 0.41, where
// autocast's are 5.2e-2 and 0.40.
func TestParityCUDABF16Activations(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	be, err := cudabackend.Open(cudabackend.Options{BF16MatMul: true})
	if err != nil {
		t.Fatal(err)
	}
	const tolBF16Act = 4e-2
	for _, dir := range testutil.Folders("../testdata/fixtures", "inputs.safetensors", "FTUNE_FIXTURES") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			skipUnsupported(t, dir, be)
			fx := openFixture(t, dir)
			tolOut, tolGrad := fx.bf16Bounds(t, tolBF16Act, tolBF16Act, 2)
			checkGradsLoRAAs(t, fx, be, tensor.BF16, func(*nn.Model) nn.Batch { return cudaBatch(t, fx, be) }, tolOut, tolGrad, "bf16 activations ")
		})
	}
}
