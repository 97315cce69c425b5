//go:build cudasim

package recipe

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/ftune/ftune/bench"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/lora/loratest"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
	"github.com/ftune/ftune/train"
)

// TestDevicePlanCoversTheCUDAStepAtFullSize: the GPU memory plan against
// the CUDA backend's own caching allocator, at a real model's size
// (SmolLM2-135M, 4 × 2048 tokens, bf16, LoRA r 16 on every projection,
// device AdamW), plain and checkpointed. The simulated device queues the
// step's work without running it (cuda.SetSimulatedDeviceWork), so the
// allocator sees every request a GPU run makes (size classes rounded, the
// blocks the tape releases and the optimizer's state) in seconds and
// without the memory being touched. The plan must cover the allocator's
// peak (a cap planned below it fails mid-run) and stay within 1.3× of it.
// What is compared is the plan's training step (weights, adapters and
// optimizer, activations, logits): the plan's peak is the larger of that
// and a validation batch's full-vocabulary logits, which the step
// measured here does not compute (checkpointed, validation's 0.75 GiB of
// logits make this shape's peak). TestGPUPlanMatchesCountedStep checks
// the same plan at small sizes against the counting backend.
func TestDevicePlanCoversTheCUDAStepAtFullSize(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	shape := bench.GPUShapes["smollm2-135m"]
	const B, T = 4, 2048
	dir, err := bench.RandomModelDir(t.TempDir(), shape)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nn.LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ckpt := range []bool{false, true} {
		o := Options{Precision: "bf16", R: 16, Alpha: 32, Targets: []string{"all-linear"}, BatchSize: B, SeqLen: T, GradCheckpointing: ckpt}
		plan := o.planFor(cfg, deviceFacts{gpu: true, name: "ptxsim", free: 80 << 30})
		peak := fullSizeStepPeak(t, dir, cfg, B, T, ckpt)
		step := plan.Weights + plan.Adapters + plan.Activations + plan.Logits
		if plan.Peak < step {
			t.Errorf("checkpointing %v: the plan's peak %.3f GiB is below its own training step's %.3f GiB", ckpt, plan.Peak/(1<<30), step/(1<<30))
		}
		ratio := step / float64(peak)
		t.Logf("checkpointing %v: planned step %.3f GiB (peak with validation %.3f GiB), the allocator's peak %.3f GiB (%.2f×)", ckpt, step/(1<<30), plan.Peak/(1<<30), float64(peak)/(1<<30), ratio)
		if ratio < 1 || ratio > 1.3 {
			t.Errorf("checkpointing %v: planned %.3f GiB for an allocator peak of %.3f GiB (%.2f×, want 1 to 1.3)", ckpt, step/(1<<30), float64(peak)/(1<<30), ratio)
		}
	}
}

// fullSizeStepPeak loads dir on the simulated GPU and runs two trainer
// steps with the device's work off; it returns the allocator's peak live
// bytes beyond what was live before the model loaded.
func fullSizeStepPeak(t *testing.T, dir string, cfg nn.Config, B, T int, ckpt bool) int64 {
	d, err := OpenDeviceFor(DeviceRequest{Device: "cuda", Precision: "bf16"})
	if err != nil {
		t.Fatal(err)
	}
	cb := d.Backend.(*cudabackend.Backend)
	al := cb.CUDADevice().Allocator()
	// Storages earlier tests left to the collector go back first.
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	base := al.Stats().Live
	al.ResetPeak()
	defer cuda.SetSimulatedDeviceWork(cuda.SetSimulatedDeviceWork(false))
	defer func() {
		if err := cb.Sync(); err != nil {
			t.Error(err)
		}
	}()
	var peak int64
	err = tensor.Catch(func() {
		m, a := loratest.Attached(t, dir, nn.LoadOptions{KeepBF16: true, Backend: cb, DType: d.ModelDType()}, lora.NewConfig(16, 32, "all-linear"), 1)
		rows := make([]prep.Row, B)
		for i := range rows {
			rows[i].Docs = 1
			for j := range T {
				id := int32((i*7919 + j*31 + 13) % cfg.VocabSize)
				rows[i].InputIDs, rows[i].Learnt = append(rows[i].InputIDs, id), append(rows[i].Learnt, true)
			}
		}
		loader, err := train.NewRowLoader(rows, []string{"s"}, B, false, 1, 0, cb)
		if err != nil {
			t.Fatal(err)
		}
		opt, err := optim.NewAdamW(optim.AdamWConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2, NoDecay: optim.DefaultNoDecay})
		if err != nil {
			t.Fatal(err)
		}
		tr := &train.Trainer{Model: m, Params: a.Params(), Opt: opt, Train: loader,
			// No kernel runs, so every gradient norm reads 0: the collapse
			// guard must not end the run.
			Cfg: train.Config{MaxSteps: 2, GradAccum: 1, ClipNorm: 1, LR: 1e-4, Checkpointing: ckpt, MaxDeadSteps: 3}}
		if err := tr.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		peak = al.Stats().Peak - base
	})
	if err != nil {
		t.Fatal(err)
	}
	return peak
}
