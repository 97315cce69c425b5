package parity

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/quant/nf4"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// bf16ActStep is one LoRA training step (dropout 0.1, activations
// released as the trainer does) on be with the model computing in dt and
// the memory savers of mem: the loss and every adapter gradient.
func bf16ActStep(t *testing.T, dir string, be tensor.Backend, dt tensor.DType, path trainPath, T int, mem memSavers) (float64, map[string][]float32) {
	t.Helper()
	opt := nn.LoadOptions{Backend: be, DType: dt, KeepBF16: true}
	if path.nf4 {
		opt.Quantize = nf4.Quantizer(be)
	}
	m, err := nn.Load(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	m.Checkpointing, m.OffloadCheckpoints, m.MLPChunkTokens = mem.ckpt, mem.offload, mem.mlpChunk
	a, err := lora.New(m, path.adapter(), "default", 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range a.Layers {
		l.Dropout = 0.1
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	const B = 2
	ids := make([]int64, B*T)
	rng := rand.New(rand.NewPCG(13, 2026))
	for i := range ids {
		ids[i] = 4 + rng.Int64N(int64(m.Config.VocabSize-4))
	}
	batch := nn.Batch{InputIDs: tensor.FromHost(be, tensor.I64, ids, B, T), Labels: tensor.FromHost(be, tensor.I64, ids, B, T)}
	tp := autograd.NewTape()
	tp.ReleaseActivations = true
	out, err := m.Forward(tp, batch, nn.ForwardOptions{LossOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	loss := out.Loss.Value.Item()
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	for n, p := range a.Params() {
		if p.Grad == nil {
			t.Fatalf("%s: no gradient", n)
		}
		if p.Grad.DType() != tensor.F32 {
			t.Fatalf("%s: gradient in %v, want the float32 master's", n, p.Grad.DType())
		}
		grads[n] = p.Grad.F32()
	}
	return loss, grads
}

// memSavers are the model's memory settings for a step: gradient
// checkpointing, its saved inputs offloaded, the MLP over chunks of tokens.
type memSavers struct {
	ckpt, offload bool
	mlpChunk      int
}

// TestParityCUDABF16ActivationsFamilies: QLoRA and DoRA with rsLoRA, LoRA
// dropout on, with bf16 activations on the GPU's bf16 path (every op's
// output in bf16; LoRA masters, their gradients, norm statistics, softmax
// and the loss in float32) against the CPU's float32 step, for the small
// tiny families (Gemma 3, Qwen 3, Phi-3 with LongRoPE's long factors).
// Bounds: loss 2e-3 relative (measured ≤ 1.0e-3), worst adapter gradient
// tensor 6e-2 (measured ≤ 4.6e-2): TestParityCUDABF16Activations' 4e-2,
// plus DoRA's dropout branch, whose x⊙mask and x⊙(1−mask) products are
// two more bf16 roundings per adapted linear. And (on Gemma 3) a checkpointed step
// gives the same loss and gradients bit for bit (its recompute rounds
// exactly as the first forward did), also with the saved block inputs
// offloaded to pinned host memory (the copies move bits). The MLP over
// chunks of 8 tokens gives the same loss bit for bit (each row's products
// are the whole MLP's) and gradients within 1e-2 (measured ≤ 3.9e-3): a
// weight's gradient is summed over the chunks, and each chunk's share
// leaves its GEMM rounded to bf16 as the whole batch's does (autocast's
// bf16 gradient, then float32 accumulation), so three roundings of
// partial sums stand where one was, each 2⁻⁹ of its part.
func TestParityCUDABF16ActivationsFamilies(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	be, err := cudabackend.Open(cudabackend.Options{BF16MatMul: true})
	if err != nil {
		t.Fatal(err)
	}
	const tolLoss, tolGrad = 2e-3, 6e-2
	for _, fam := range []struct {
		dir    string
		T      int
		savers bool // the memory savers checked on this family too
	}{{gemma3Tiny(t), 21, true}, {qwen3Tiny(t), 21, false}, {phi3Tiny(t), 37, false}} {
		for _, path := range trainPaths[1:] { // qlora, dora-rslora
			t.Run(filepath.Base(fam.dir)+"/"+path.name, func(t *testing.T) {
				wantLoss, want := bf16ActStep(t, fam.dir, tensor.CPUDefault(), 0, path, fam.T, memSavers{})
				loss, got := bf16ActStep(t, fam.dir, be, tensor.BF16, path, fam.T, memSavers{})
				worst, worstName := 0.0, ""
				for n, w := range want {
					if e := testutil.RelFrobenius(testutil.F64(got[n]), testutil.F64(w)); e > worst || e != e {
						worst, worstName = e, n
					}
				}
				report(t, "bf16 activations loss", math.Abs(loss-wantLoss)/math.Abs(wantLoss), tolLoss)
				report(t, "bf16 activations grads ("+worstName+")", worst, tolGrad)
				// The memory savers wrap every family's block alike (the
				// checkpointed block, nn/mlp.go's tiledMLP), so one family
				// checks them: Gemma 3's block has the most parts (GeGLU,
				// sliding and global layers, four norms). ~35 s more
				// under ptxsim for Qwen 3 and Phi-3 together.
				if path.name != "dora-rslora" || !fam.savers {
					return
				}
				for _, offload := range []bool{false, true} {
					ckptLoss, ckpt := bf16ActStep(t, fam.dir, be, tensor.BF16, path, fam.T, memSavers{ckpt: true, offload: offload})
					if ckptLoss != loss {
						t.Errorf("checkpointed loss %v (offloaded %v), %v without", ckptLoss, offload, loss)
					}
					for n, g := range got {
						if !slices.Equal(ckpt[n], g) {
							t.Errorf("%s: checkpointed gradient differs (offloaded %v)", n, offload)
						}
					}
				}
				if be.PinnedBytes() == 0 {
					t.Error("offload took no pinned host memory: nothing was offloaded")
				}
				tiledLoss, tiled := bf16ActStep(t, fam.dir, be, tensor.BF16, path, fam.T, memSavers{ckpt: true, offload: true, mlpChunk: 8})
				if tiledLoss != loss {
					t.Errorf("MLP over chunks: loss %v, %v whole", tiledLoss, loss)
				}
				worst = 0
				for n, g := range got {
					worst = max(worst, testutil.RelFrobenius(testutil.F64(tiled[n]), testutil.F64(g)))
				}
				report(t, "MLP over chunks of 8 tokens against the whole MLP, grads", worst, 1e-2)
			})
		}
	}
}

// TestParityCUDABF16ActivationsGenerate: greedy generation with bf16
// activations (bf16 KV cache, the masked attention's query offsets) on
// tiny-base gives the CPU float32 run's tokens. On this prompt every step's
// top two logits are further apart than bf16 noise moves them, so the
// tokens must be the same (measured under ptxsim: the same 6 tokens);
// a cache or offset bug changes them.
func TestParityCUDABF16ActivationsGenerate(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	prompt := []int{5, 77, 301, 12, 999, 40, 7}
	const dir = "../assets/models/tiny-base"
	cpu, err := nn.Load(dir, nn.LoadOptions{KeepBF16: true})
	if err != nil {
		t.Fatal(err)
	}
	want, err := cpu.Generate(prompt, nn.GenerateOptions{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	be, err := cudabackend.Open(cudabackend.Options{BF16MatMul: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := nn.Load(dir, nn.LoadOptions{KeepBF16: true, DType: tensor.BF16, Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Generate(prompt, nn.GenerateOptions{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("bf16 activations generated %v, the CPU %v", got, want)
	}
}
