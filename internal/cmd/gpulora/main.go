// Command gpulora times ftune's LoRA training step on a GPU for a
// Llama-shaped model with random weights, the way bench/peft_lora_bench.py
// times PyTorch + PEFT on the same shape: r=16, alpha=32 on all seven
// projections, AdamW, warm-up steps then timed steps. It prints one JSON
// line per run.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/bench"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

func main() {
	shape := flag.String("shape", "smollm2-135m", "model shape (bench.Shapes)")
	batch := flag.Int("batch", 8, "rows per step")
	seq := flag.Int("seq", 2048, "tokens per row")
	bf16 := flag.Bool("bf16", false, "bf16 tensor-core GEMMs (else float32)")
	warmup := flag.Int("warmup", 1, "untimed steps")
	steps := flag.Int("steps", 3, "timed steps")
	cache := flag.String("cache", os.TempDir(), "folder for the random-weight model")
	flag.Parse()
	if err := run(*shape, *batch, *seq, *bf16, *warmup, *steps, *cache); err != nil {
		fmt.Fprintln(os.Stderr, "gpulora:", err)
		os.Exit(1)
	}
}

func run(shapeName string, B, T int, bf16 bool, warmup, steps int, cache string) error {
	s, ok := bench.Shapes[shapeName]
	if !ok {
		return fmt.Errorf("unknown shape %q", shapeName)
	}
	dir, err := bench.RandomModelDir(cache, s)
	if err != nil {
		return err
	}
	be, err := cudabackend.Open(cudabackend.Options{BF16MatMul: bf16})
	if err != nil {
		return err
	}
	m, err := nn.Load(dir, nn.LoadOptions{KeepBF16: true, Backend: be})
	if err != nil {
		return err
	}
	ad, err := lora.New(m, lora.NewConfig(16, 32, "all-linear"), "default", 1)
	if err != nil {
		return err
	}
	if err := ad.Attach(m); err != nil {
		return err
	}
	adam, err := optim.NewAdamW(optim.AdamWConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(0, 1))
	ids := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64(rng.IntN(s.Vocab))
	}
	in := nn.Batch{InputIDs: tensor.FromHost(be, tensor.I64, ids, B, T), Labels: tensor.FromHost(be, tensor.I64, ids, B, T)}
	params := ad.Params()
	var loss float64
	step := func() error {
		tp := autograd.NewTape()
		out, err := m.Forward(tp, in, nn.ForwardOptions{LossOnly: true})
		if err != nil {
			return err
		}
		if err := tp.Backward(out.Loss); err != nil {
			return err
		}
		loss = out.Loss.Value.Item()
		// The optimizer runs on host copies (the adapter is 4.6M floats
		// here); device AdamW is a kernel not yet wired into the trainer.
		var ps []optim.Param
		for name, v := range params {
			ps = append(ps, optim.Param{Name: name, Data: v.Value.F32(), Grad: v.Grad.F32()})
		}
		if err := adam.Step(ps); err != nil {
			return err
		}
		for _, p := range ps {
			v := params[p.Name]
			v.Value.CopyFrom(tensor.FromHost(be, tensor.F32, p.Data, v.Value.Shape()...))
			v.ZeroGrad()
		}
		return be.Sync()
	}
	for i := 0; i < warmup; i++ {
		if err := step(); err != nil {
			return err
		}
	}
	t0 := time.Now()
	for i := 0; i < steps; i++ {
		if err := step(); err != nil {
			return err
		}
	}
	dt := time.Since(t0).Seconds() / float64(steps)
	st := be.Stats()
	mode := "f32"
	if bf16 {
		mode = "bf16"
	}
	out, _ := json.Marshal(map[string]any{
		"side": "ftune", "shape": s.Name, "batch": B, "seq": T, "gemm": mode,
		"step_s": dt, "tokens_per_s": float64(B*T) / dt, "loss": loss,
		"peak_gib": float64(st.Peak) / (1 << 30),
	})
	fmt.Println(string(out))
	return nil
}
