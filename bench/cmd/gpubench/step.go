package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/ftune/ftune/bench"
	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/quant/nf4"
	"github.com/ftune/ftune/recipe"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
	"github.com/ftune/ftune/train"
)

// measure times the steps of the trainer ftune train runs (train.Trainer,
// its optimizer path chosen as for the CLI) on a random-weight model of the
// shape and returns the row.
func measure(f stepFlags) (bench.GPURow, error) {
	s, _ := shapeOf(f.shape)
	model := s
	if strings.HasSuffix(model.Name, "-maxctx") {
		model.Name = "llama-3-8b" // same weights: one random folder
	}
	if f.hostOnly {
		// Read when the simulated driver binds, at the first open.
		if err := os.Setenv("FTUNE_CUDASIM_KERNELS", "skip"); err != nil {
			return bench.GPURow{}, err
		}
	}
	dev, err := openDevice(f)
	if err != nil {
		return bench.GPURow{}, err
	}
	dir, err := bench.RandomModelDir(f.cache, model)
	if err != nil {
		return bench.GPURow{}, err
	}
	// The model lives on the profiler (a pass-through that counts each call)
	// so that -profile's step can time it; the timed steps make the CLI's
	// calls, with no synchronization added.
	prof := bench.NewProfiledBackend(dev.be, nil)
	opt := nn.LoadOptions{KeepBF16: true, Backend: prof, DType: dev.dtype}
	if f.nf4 {
		opt.Quantize = nf4.Quantizer(prof)
	}
	m, err := nn.Load(dir, opt)
	if err != nil {
		return bench.GPURow{}, err
	}
	lc := lora.NewConfig(f.rank, float64(2*f.rank), "all-linear")
	lc.LoraDropout = f.loraDropout
	ad, err := lora.New(m, lc, "default", 1)
	if err != nil {
		return bench.GPURow{}, err
	}
	if err := ad.Attach(m); err != nil {
		return bench.GPURow{}, err
	}
	// AdamW as recipe's trainer builds it (the anchor's settings).
	adam, err := optim.NewAdamW(optim.AdamWConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2, NoDecay: optim.DefaultNoDecay})
	if err != nil {
		return bench.GPURow{}, err
	}
	params := ad.Params()
	timer := &stepTimer{warmup: f.warmup, timed: f.steps, sync: dev.sync, calls: dev.calls}
	if f.profile != "" {
		timer.profile = prof
	}
	tr := &train.Trainer{Model: m, Params: params, Opt: adam, Train: newRepeatLoader(prof, s.Vocab, f.batch, f.seq),
		Cfg: train.Config{MaxSteps: timer.total(), GradAccum: 1, ClipNorm: 1, LR: 1e-4, LogEvery: 1,
			Checkpointing: f.ckpt, OffloadCheckpoints: f.offload, MLPChunkTokens: f.mlpChunk}, // ftune train's defaults: clip at 1
		Callbacks: []train.Callback{timer}}
	if f.hostOnly {
		// No kernel runs, so every gradient norm reads 0: the collapse
		// guard must not end the run.
		tr.Cfg.MaxDeadSteps = timer.total() + 1
	}
	// The optimizer path is the trainer's own choice; the profiler only
	// wraps what it chose (the device step, or the host optimizer).
	if path, onDevice := train.OptimizerPath(adam, 1, params); onDevice {
		tr.DeviceStep = bench.ProfiledDeviceStep(prof)
	} else {
		// The trainer would name the wrapper's type: the path is AdamW's.
		tr.Opt, timer.path = bench.ProfiledOptimizer{Optimizer: adam, P: prof}, path
	}
	if err := tensor.Catch(func() {
		if err := tr.Fit(context.Background()); err != nil {
			panic(&tensor.Error{Err: err})
		}
	}); err != nil {
		return bench.GPURow{}, fmt.Errorf("training steps: %w", err)
	}
	if timer.err != nil {
		return bench.GPURow{}, timer.err
	}
	if n := tr.State.SkippedSteps; n > 0 {
		return bench.GPURow{}, fmt.Errorf("the trainer skipped %d steps (non-finite loss or gradient norm, last loss %g): no timing", n, tr.State.LastLoss)
	}
	if tr.State.Step != timer.total() {
		return bench.GPURow{}, fmt.Errorf("the trainer stopped after %d of %d steps (%s)", tr.State.Step, timer.total(), tr.State.StopReason)
	}
	dt := timer.timedSeconds / float64(f.steps)
	if f.profile != "" {
		gemm := dev.gemmProvider
		if gemm == "" {
			gemm = "none (the CPU's kernels)"
		}
		if err := writeProfile(f, prof, timer.profiledSeconds, dt, gemm, timer.path); err != nil {
			return bench.GPURow{}, err
		}
	}
	row := bench.GPURow{Shape: s.Name, Side: "ftune", Batch: f.batch, Seq: f.seq, Ckpt: f.ckpt, Variant: f.variant(),
		TokensPerS: float64(f.batch*f.seq) / dt, PeakGiB: float64(dev.peak()) / (1 << 30), StepS: dt, Loss: tr.State.LastLoss,
		GEMMProvider: dev.gemmProvider, Optimizer: timer.path}
	if timer.calls != nil {
		row.LaunchesPerStep = float64(timer.timedCalls["cuLaunchKernel"]) / float64(f.steps)
		row.HostWaitsPerStep = map[string]float64{}
		for name, n := range cuda.HostWaits(map[string]int64{}, timer.timedCalls) {
			row.HostWaitsPerStep[name] = float64(n) / float64(f.steps)
		}
		row.ForcedGCsPerStep = float64(timer.timedCalls[forcedGCs]) / float64(f.steps)
		row.DriverAllocsPerStep = float64(timer.timedCalls["cuMemAlloc"]) / float64(f.steps)
		row.HostWaitSPerStep = float64(timer.timedCalls[hostWaitNanos]) / 1e9 / float64(f.steps)
		for name, n := range timer.timedCalls {
			if k, ok := strings.CutPrefix(name, launchPrefix+"matmul_"); ok && n > 0 {
				if row.GEMMKernelsPerStep == nil {
					row.GEMMKernelsPerStep = map[string]float64{}
				}
				row.GEMMKernelsPerStep["matmul_"+k] = float64(n) / float64(f.steps)
			}
		}
	}
	if strings.HasSuffix(s.Name, "-maxctx") {
		row.SeqLen = f.seq
	}
	return row, nil
}

// stepTimer is the trainer callback that times the steps: warm-up steps,
// then the timed ones between two device synchronizations, then with a
// profiler one more step with a synchronization after every call.
type stepTimer struct {
	train.Base
	warmup, timed int
	sync          func() error
	profile       *bench.ProfiledBackend // nil: no profiled step
	// calls snapshots the device's driver call counts (nil on the CPU);
	// timedCalls is their difference over the timed steps.
	calls       func() map[string]int64
	callsAtMark map[string]int64
	timedCalls  map[string]int64

	path                          string // the trainer's optimizer path (set before: the host path's)
	t0                            time.Time
	timedSeconds, profiledSeconds float64
	err                           error
}

func (s *stepTimer) total() int {
	if s.profile != nil {
		return s.warmup + s.timed + 1
	}
	return s.warmup + s.timed
}

func (s *stepTimer) OnTrainStart(t *train.Trainer) error {
	if s.path == "" {
		s.path = t.OptimizerPath() // the device step's Describe
	}
	if s.warmup == 0 {
		return s.mark()
	}
	return nil
}

func (s *stepTimer) mark() error {
	if err := s.sync(); err != nil {
		return err
	}
	s.t0 = time.Now()
	if s.calls != nil {
		s.callsAtMark = s.calls()
	}
	return nil
}

func (s *stepTimer) OnStepEnd(t *train.Trainer, _ train.Metrics) error {
	switch t.State.Step {
	case s.warmup:
		return s.mark()
	case s.warmup + s.timed:
		if s.calls != nil { // before the timer's own synchronization
			now := s.calls()
			s.timedCalls = map[string]int64{}
			for name, n := range now {
				s.timedCalls[name] = n - s.callsAtMark[name]
			}
		}
		if err := s.sync(); err != nil {
			return err
		}
		s.timedSeconds = time.Since(s.t0).Seconds()
		if s.profile != nil {
			s.profile.Reset()
			s.profile.Sync = s.sync
			s.t0 = time.Now()
		}
	case s.warmup + s.timed + 1:
		if err := s.sync(); err != nil {
			return err
		}
		s.profiledSeconds = time.Since(s.t0).Seconds()
		s.profile.Sync = nil
	}
	return nil
}

// repeatLoader yields one batch of random token ids, labelled, every step
// (the anchor's input: random ids of the shape's vocabulary).
type repeatLoader struct {
	b    train.Batch
	next int
}

func newRepeatLoader(be tensor.Backend, vocab, batch, seq int) *repeatLoader {
	rng := rand.New(rand.NewPCG(0, 1))
	ids := make([]int64, batch*seq)
	for i := range ids {
		ids[i] = int64(rng.IntN(vocab))
	}
	return &repeatLoader{b: train.Batch{Batch: nn.Batch{InputIDs: tensor.FromHost(be, tensor.I64, ids, batch, seq), Labels: tensor.FromHost(be, tensor.I64, ids, batch, seq)},
		Tokens: batch * seq, Labelled: batch * (seq - 1)}}
}

func (l *repeatLoader) Next() (train.Batch, error) { l.next++; return l.b, nil }
func (l *repeatLoader) StartEpoch(int)             { l.next = 0 }
func (l *repeatLoader) Position() (int, int)       { return 0, l.next }
func (l *repeatLoader) Len() int                   { return 1 << 30 }

// device is the backend a step runs on, with its synchronization, peak
// memory and GEMM provider: the GPU, or the CPU for a dry run (peak 0: not
// measured there).
type device struct {
	be           tensor.Backend
	dtype        tensor.DType // the model's compute dtype, as ftune train loads it
	sync         func() error
	peak         func() int64
	gemmProvider string
	calls        func() map[string]int64 // the driver's call counts; nil on the CPU
}

// Keys under which device.calls counts, beside the driver's calls, the
// backend's forced collections and the nanoseconds the host spent blocked
// in the driver (cuda.Device.HostWaitTime).
const (
	forcedGCs = "forced garbage collections"
	// launchPrefix + a kernel's name counts its launches (cuda.Device.Launches).
	launchPrefix  = "launch "
	hostWaitNanos = "host wait ns"
)

// openDevice opens the device as ftune train does (recipe.OpenDeviceFor):
// cuda with the precision and GEMM provider asked for, or the CPU.
func openDevice(f stepFlags) (device, error) {
	req := recipe.DeviceRequest{Device: "cuda", Precision: "bf16", MaxDeviceMemory: int64(f.maxDeviceMemoryGiB * (1 << 30)),
		GEMMProvider: f.gemmProvider, AttentionKernel: f.attentionKernel, UnfusedLoRA: f.unfusedLoRA, WGMMA: f.wgmma, WGMMALoads: f.wgmmaLoads, Log: os.Stderr}
	switch {
	case f.cpu:
		req.Device, req.Precision = "cpu", "f32"
	case f.f32:
		req.Precision = "f32"
	}
	d, err := recipe.OpenDeviceFor(req)
	if err != nil {
		return device{}, err
	}
	cb, ok := d.Backend.(*cudabackend.Backend)
	if !ok {
		return device{be: d.Backend, dtype: d.ModelDType(), sync: func() error { return nil }, peak: func() int64 { return 0 }}, nil
	}
	calls := func() map[string]int64 {
		c := cb.CUDADevice().CallCounts()
		c[forcedGCs] = cb.ForcedGCs()
		c[hostWaitNanos] = int64(cb.CUDADevice().HostWaitTime())
		for name, n := range cb.CUDADevice().Launches() {
			c[launchPrefix+name] = n
		}
		return c
	}
	return device{be: cb, dtype: d.ModelDType(), sync: cb.Sync, peak: func() int64 { return cb.Stats().Peak }, gemmProvider: d.GEMMProvider,
		calls: calls}, nil
}
