// Command gpubench measures ftune's LoRA training step on a GPU for issue
// 10's benchmark table and writes its rows (scripts/gpu-bench.sh runs it).
//
//	gpubench step -shape smollm2-135m [-batch 8 -seq 2048 -nf4 -ckpt -f32 -profile out.md]
//	    loads a random-weight model of the shape on the CUDA backend, attaches
//	    LoRA (r=16, alpha=32 unless -rank; all seven projections), runs warm-up
//	    steps then timed steps (forward with the chunked loss, backward, AdamW
//	    on host copies, zero grad) and prints one GPURow as a JSON line. With
//	    -profile it times one more step through bench.ProfiledBackend and
//	    writes the per-op-family table there.
//	gpubench rows -anchor gpubench.json -ftune ftune.jsonl -o rows.jsonl
//	    merges the anchor's runs (bench/peft_lora_bench.py's gpubench.json)
//	    with ftune's rows into bench/results/gpu-lora-<gpu>-<date>.jsonl and
//	    prints the ratio table.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/bench"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/quant/nf4"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gpubench:", err)
		os.Exit(1)
	}
}

const usage = "usage: gpubench step|rows [flags] (gpubench step -h, gpubench rows -h)"

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "step":
		return stepCmd(args[1:], stdout)
	case "rows":
		return rowsCmd(args[1:], stdout)
	}
	return fmt.Errorf("unknown subcommand %q; %s", args[0], usage)
}

// stepFlags are one measurement's settings.
type stepFlags struct {
	shape              string
	batch, seq, rank   int
	nf4, ckpt, f32     bool
	release            bool
	cpu                bool // dry runs here: the whole step on the CPU backend
	warmup, steps      int
	cache, profile     string
	maxDeviceMemoryGiB float64
}

func parseStep(args []string) (stepFlags, error) {
	var f stepFlags
	fs := flag.NewFlagSet("gpubench step", flag.ContinueOnError)
	fs.StringVar(&f.shape, "shape", "smollm2-135m", "shape: "+shapeNames())
	fs.IntVar(&f.batch, "batch", 0, "rows per step (0: the shape's)")
	fs.IntVar(&f.seq, "seq", 0, "tokens per row (0: the shape's)")
	fs.IntVar(&f.rank, "rank", 16, "LoRA rank (alpha = 2·rank)")
	fs.BoolVar(&f.nf4, "nf4", false, "QLoRA: NF4 projection weights")
	fs.BoolVar(&f.ckpt, "ckpt", false, "gradient checkpointing per decoder block")
	fs.BoolVar(&f.release, "release", true, "release each activation after its last use (autograd Tape.ReleaseActivations); false: leave dead buffers to Go's collector")
	fs.BoolVar(&f.f32, "f32", false, "float32 GEMMs (the parity path) instead of bf16 tensor cores")
	fs.IntVar(&f.warmup, "warmup", 1, "untimed steps")
	fs.IntVar(&f.steps, "steps", 3, "timed steps")
	fs.StringVar(&f.cache, "cache", os.TempDir(), "folder for the random-weight model")
	fs.StringVar(&f.profile, "profile", "", "write the per-op profile of one extra step (markdown) to this file")
	fs.BoolVar(&f.cpu, "cpu", false, "run on the CPU backend (a dry run of this program without a GPU; also accepts -shape tiny-base)")
	fs.Float64Var(&f.maxDeviceMemoryGiB, "max-device-memory-gib", 0, "refuse device allocations past this many GiB (0: no cap)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("step: unexpected argument %q", fs.Arg(0))
	}
	s, ok := shapeOf(f.shape, f.cpu)
	if !ok {
		return f, fmt.Errorf("step: unknown shape %q (want one of %s)", f.shape, shapeNames())
	}
	if f.batch == 0 {
		f.batch = s.Batch
	}
	if f.seq == 0 {
		f.seq = s.Seq
	}
	switch {
	case f.batch < 1 || f.seq < 2:
		return f, fmt.Errorf("step: -batch %d -seq %d: want batch ≥ 1 and seq ≥ 2", f.batch, f.seq)
	case f.rank < 1:
		return f, fmt.Errorf("step: -rank %d: want ≥ 1", f.rank)
	case f.steps < 1 || f.warmup < 0:
		return f, fmt.Errorf("step: -steps %d -warmup %d: want steps ≥ 1, warmup ≥ 0", f.steps, f.warmup)
	case f.nf4 && f.f32:
		return f, errors.New("step: -nf4 runs bf16 GEMMs; drop -f32")
	case f.maxDeviceMemoryGiB < 0:
		return f, fmt.Errorf("step: -max-device-memory-gib %g: want ≥ 0", f.maxDeviceMemoryGiB)
	}
	return f, nil
}

// shapeOf looks a shape up; the CPU dry run may also use tiny-base.
func shapeOf(name string, cpu bool) (bench.Shape, bool) {
	if s, ok := bench.GPUShapes[name]; ok {
		return s, true
	}
	if cpu && name == "tiny-base" {
		return bench.Shapes[name], true
	}
	return bench.Shape{}, false
}

func shapeNames() string {
	return "smollm2-135m, llama-3.2-1b, llama-3-8b, llama-3.1-8b-maxctx"
}

// variant names the ftune configuration in a row.
func (f stepFlags) variant() string {
	v := "bf16"
	if f.cpu {
		return "cpu f32 (dry run)"
	}
	if f.f32 {
		v = "f32"
	}
	if f.nf4 {
		v = "nf4"
	}
	if f.rank != 16 {
		v += fmt.Sprintf(" r%d", f.rank)
	}
	if !f.release {
		v += " gc-only"
	}
	return v
}

func stepCmd(args []string, stdout io.Writer) error {
	f, err := parseStep(args)
	if err != nil {
		return err
	}
	row, err := measure(f)
	if err != nil {
		return err
	}
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}

func measure(f stepFlags) (bench.GPURow, error) {
	s, _ := shapeOf(f.shape, f.cpu)
	model := s
	if strings.HasSuffix(model.Name, "-maxctx") {
		model.Name = "llama-3-8b" // same weights: one random folder
	}
	dir, err := bench.RandomModelDir(f.cache, model)
	if err != nil {
		return bench.GPURow{}, err
	}
	dev, err := openDevice(f)
	if err != nil {
		return bench.GPURow{}, err
	}
	prof := bench.NewProfiledBackend(dev.be, nil)
	opt := nn.LoadOptions{KeepBF16: true, Backend: prof}
	if f.nf4 {
		opt.Quantize = nf4.Quantizer(prof)
	}
	m, err := nn.Load(dir, opt)
	if err != nil {
		return bench.GPURow{}, err
	}
	m.Checkpointing = f.ckpt
	ad, err := lora.New(m, lora.NewConfig(f.rank, float64(2*f.rank), "all-linear"), "default", 1)
	if err != nil {
		return bench.GPURow{}, err
	}
	if err := ad.Attach(m); err != nil {
		return bench.GPURow{}, err
	}
	adam, err := optim.NewAdamW(optim.AdamWConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2})
	if err != nil {
		return bench.GPURow{}, err
	}
	rng := rand.New(rand.NewPCG(0, 1))
	ids := make([]int64, f.batch*f.seq)
	for i := range ids {
		ids[i] = int64(rng.IntN(s.Vocab))
	}
	in := nn.Batch{InputIDs: tensor.FromHost(prof, tensor.I64, ids, f.batch, f.seq), Labels: tensor.FromHost(prof, tensor.I64, ids, f.batch, f.seq)}
	params := ad.Params()
	var loss float64
	step := func() error {
		return tensor.Catch(func() {
			tp := autograd.NewTape()
			tp.ReleaseActivations = f.release
			out, err := m.Forward(tp, in, nn.ForwardOptions{LossOnly: true})
			if err != nil {
				panic(&tensor.Error{Err: err})
			}
			if err := tp.Backward(out.Loss); err != nil {
				panic(&tensor.Error{Err: err})
			}
			loss = out.Loss.Value.Item()
			// The optimizer runs on host copies, as internal/cmd/gpulora's
			// does (the device AdamW is not wired into the step yet).
			err = prof.Within("optimizer (host round trip)", func() error {
				var ps []optim.Param
				for name, v := range params {
					ps = append(ps, optim.Param{Name: name, Data: v.Value.F32(), Grad: v.Grad.F32()})
				}
				if err := adam.Step(ps); err != nil {
					return err
				}
				for _, p := range ps {
					v := params[p.Name]
					v.Value.CopyFrom(tensor.FromHost(prof, tensor.F32, p.Data, v.Value.Shape()...))
					v.ZeroGrad()
				}
				return nil
			})
			if err != nil {
				panic(&tensor.Error{Err: err})
			}
			if err := dev.sync(); err != nil {
				panic(&tensor.Error{Err: err})
			}
		})
	}
	for i := 0; i < f.warmup; i++ {
		if err := step(); err != nil {
			return bench.GPURow{}, fmt.Errorf("warm-up step: %w", err)
		}
	}
	t0 := time.Now()
	for i := 0; i < f.steps; i++ {
		if err := step(); err != nil {
			return bench.GPURow{}, fmt.Errorf("timed step %d: %w", i+1, err)
		}
	}
	dt := time.Since(t0).Seconds() / float64(f.steps)
	peak := dev.peak()
	if f.profile != "" {
		prof.Reset()
		prof.Sync = dev.sync
		p0 := time.Now()
		if err := step(); err != nil {
			return bench.GPURow{}, fmt.Errorf("profiled step: %w", err)
		}
		if err := writeProfile(f, prof, time.Since(p0).Seconds(), dt); err != nil {
			return bench.GPURow{}, err
		}
	}
	row := bench.GPURow{Shape: s.Name, Side: "ftune", Batch: f.batch, Seq: f.seq, Ckpt: f.ckpt, Variant: f.variant(),
		TokensPerS: float64(f.batch*f.seq) / dt, PeakGiB: float64(peak) / (1 << 30), StepS: dt, Loss: loss}
	if strings.HasSuffix(s.Name, "-maxctx") {
		row.SeqLen = f.seq
	}
	return row, nil
}

// device is the backend a step runs on, with its synchronization and peak
// memory: the GPU, or the CPU for a dry run (peak 0: not measured there).
type device struct {
	be   tensor.Backend
	sync func() error
	peak func() int64
}

func openDevice(f stepFlags) (device, error) {
	if f.cpu {
		return device{be: tensor.CPUDefault(), sync: func() error { return nil }, peak: func() int64 { return 0 }}, nil
	}
	cb, err := cudabackend.Open(cudabackend.Options{BF16MatMul: !f.f32, MaxDeviceMemory: int64(f.maxDeviceMemoryGiB * (1 << 30))})
	if err != nil {
		return device{}, err
	}
	return device{be: cb, sync: cb.Sync, peak: func() int64 { return cb.Stats().Peak }}, nil
}

func writeProfile(f stepFlags, prof *bench.ProfiledBackend, profiled, unprofiled float64) error {
	w, err := os.Create(f.profile)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "### %s, %d × %d, %s%s\n\nOne step with a device synchronization after every backend call: %.3f s (unprofiled %.3f s).\n\n",
		f.shape, f.batch, f.seq, f.variant(), map[bool]string{true: ", checkpointed"}[f.ckpt], profiled, unprofiled)
	if err := prof.WriteTable(w, profiled); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func rowsCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gpubench rows", flag.ContinueOnError)
	anchor := fs.String("anchor", "", "the anchor's gpubench.json (bench/peft_lora_bench.py)")
	ftune := fs.String("ftune", "", "ftune's rows, JSON lines (gpubench step output)")
	out := fs.String("o", "", "write the merged rows here (JSON lines)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ftune == "" || *out == "" {
		return errors.New("rows: -ftune and -o are required")
	}
	var rows []bench.GPURow
	if *anchor != "" {
		a, failed, err := bench.AnchorRows(*anchor)
		if err != nil {
			return err
		}
		for _, k := range failed {
			fmt.Fprintf(stdout, "anchor run %s failed (its traceback is in the anchor's log): no ratio for it\n\n", k)
		}
		rows = append(rows, a...)
	}
	fr, err := os.Open(*ftune)
	if err != nil {
		return err
	}
	defer fr.Close()
	r, err := bench.ReadRows(fr, *ftune)
	if err != nil {
		return err
	}
	rows = append(rows, r...)
	w, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := bench.WriteRows(w, rows); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return bench.WriteRatioTable(stdout, rows)
}
