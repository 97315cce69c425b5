package cudabackend_test

// The trainer's device optimizer step end to end on a GPU. It lives with
// the backend's tests so that scripts/gpu-check.sh, which runs every test
// of this package's binary, runs it (an external test package: the trainer
// imports this backend).

import (
	"context"
	"fmt"
	"maps"
	"math"
	"runtime/debug"
	"testing"

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

const tinyFixture = "../../testdata/fixtures/llama-tiny"

// trainSteps is the device runs' length: 8 steps on a GPU, 3 under the
// simulator (each step's kernels interpreted on the CPU), enough for the
// moments, the bias correction and the schedule's warmup to matter.
func trainSteps() int {
	if cudabackend.Simulated {
		return 3
	}
	return 8
}

// gpuRun is newRun of train's tests on the GPU: LoRA on the tiny llama,
// 12 synthetic rows, batches of 3, two micro-batches a step.
func gpuRun(t *testing.T, b tensor.Backend, steps int, clip float64) *train.Trainer {
	t.Helper()
	return gpuRunAs(t, b, steps, clip, 0)
}

// gpuRunAs is gpuRun with the model computing in dt (0: float32).
// gpuRunDropout is gpuRunAs with LoRA dropout on (0.1), as the GPU path
// users get draws its masks on the device.
func gpuRunDropout(t *testing.T, b tensor.Backend, steps int, clip float64, dt tensor.DType) *train.Trainer {
	t.Helper()
	r := gpuRunAs(t, b, steps, clip, dt)
	for _, l := range r.RNG.(*lora.Adapter).Layers {
		l.Dropout = 0.1
	}
	return r
}

func gpuRunAs(t *testing.T, b tensor.Backend, steps int, clip float64, dt tensor.DType) *train.Trainer {
	t.Helper()
	m, a := loratest.Attached(t, tinyFixture, nn.LoadOptions{Backend: b, DType: dt}, lora.NewConfig(4, 8, "all-linear"), 7)
	var rows []prep.Row
	for i := 0; i < 12; i++ {
		r := prep.Row{Docs: 1}
		for j := 0; j < 6+i%5; j++ {
			id := (i*31 + j*7 + 3) % m.Config.VocabSize
			r.InputIDs = append(r.InputIDs, int32(id))
			r.Learnt = append(r.Learnt, j >= 2)
		}
		rows = append(rows, r)
	}
	loader, err := train.NewRowLoader(rows, []string{"s"}, 3, true, 11, 0, b)
	if err != nil {
		t.Fatal(err)
	}
	cfg := optim.DefaultAdamW()
	cfg.NoDecay = optim.DefaultNoDecay
	opt, err := optim.NewAdamW(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &train.Trainer{Model: m, Params: a.Params(), Opt: opt, Train: loader, RNG: a,
		Cfg: train.Config{MaxSteps: steps, GradAccum: 2, ClipNorm: clip, LR: 5e-3, Schedule: optim.CosineWithWarmup(2, 20, 0.5)}}
}

// hostPath keeps a trainer on optim's host code (a DeviceStep factory that
// returns none).
func hostPath(*train.Trainer) (optim.DeviceStep, error) { return nil, nil }

// pathSeen records the optimizer path and the gradient norms of a run.
type pathSeen struct {
	train.Base
	path  string
	norms []float64
}

func (p *pathSeen) OnStepEnd(t *train.Trainer, m train.Metrics) error {
	p.path = t.OptimizerPath()
	p.norms = append(p.norms, m["train/grad_norm"])
	return nil
}

// Bound: both runs compute the same forward and backward; the optimizer
// rounds differently (see TestFusedAdamWMatchesHostOptim), ~1e-7 relative
// per step, which the next steps' losses and gradients carry: losses and
// norms agree to 1e-4 relative, weights to 1e-5 + 1e-4·|w| after 8 steps.
func TestTrainerDeviceStepMatchesHostOnGPU(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	b, err := cudabackend.Open(cudabackend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, clip := range []float64{0.05, 0} {
		t.Run(fmt.Sprintf("clip%g", clip), func(t *testing.T) {
			steps := trainSteps()
			host, dev := gpuRun(t, b, steps, clip), gpuRun(t, b, steps, clip)
			host.DeviceStep = hostPath
			hs, ds := &pathSeen{}, &pathSeen{}
			host.Callbacks, dev.Callbacks = []train.Callback{hs}, []train.Callback{ds}
			for _, r := range []*train.Trainer{host, dev} {
				if err := r.Fit(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if ds.path != cudabackend.FusedOptimizerPath || hs.path == ds.path {
				t.Fatalf("paths: host run %q, device run %q", hs.path, ds.path)
			}
			clipped := 0
			for i := range hs.norms {
				if clip > 0 && hs.norms[i] > clip {
					clipped++
				}
				if math.Abs(ds.norms[i]-hs.norms[i]) > 1e-4*hs.norms[i] {
					t.Errorf("step %d: gradient norm %v on the device path, %v on the host", i+1, ds.norms[i], hs.norms[i])
				}
				if l, h := dev.State.Losses[i], host.State.Losses[i]; math.Abs(l-h) > 1e-4*math.Abs(h) {
					t.Errorf("step %d: loss %v on the device path, %v on the host", i+1, l, h)
				}
			}
			t.Logf("clip %g bound %d of %d steps; norms %.4g", clip, clipped, len(hs.norms), hs.norms)
			for name, v := range host.Params {
				h, d := v.Value.F32(), dev.Params[name].Value.F32()
				for i := range h {
					if math.Abs(float64(d[i]-h[i])) > 1e-5+1e-4*math.Abs(float64(h[i])) {
						t.Fatalf("%s[%d]: %v on the device path, %v on the host", name, i, d[i], h[i])
					}
				}
			}
			st := dev.Opt.State()
			if _, ok := dev.Opt.(*optim.AdamW); !ok || len(st.Params) != len(dev.Params) || st.Params[0].Step != steps {
				t.Errorf("after Fit: Opt %T with %d parameter states", dev.Opt, len(st.Params))
			}
		})
	}
}

// A device run checkpointed inside Fit and resumed ends where the straight
// device run ends (within the float32 noise of the GPU's reductions: the
// forward's and the norm's sums may change their last bit between runs).
func TestTrainerDeviceStepResumeOnGPU(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	b, err := cudabackend.Open(cudabackend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	steps := trainSteps()
	straight := gpuRun(t, b, steps, 0)
	if err := straight.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first := gpuRun(t, b, steps/2, 0)
	if err := first.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := train.SaveCheckpoint(dir, first, nil); err != nil {
		t.Fatal(err)
	}
	second := gpuRun(t, b, steps, 0)
	if _, err := train.ResumeLatest(dir, second, func(s string) { t.Log(s) }); err != nil {
		t.Fatal(err)
	}
	if err := second.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, h := range straight.State.Losses {
		if l := second.State.Losses[i]; math.Abs(l-h) > 1e-5*math.Abs(h) {
			t.Errorf("step %d: loss %v resumed, %v straight", i+1, l, h)
		}
	}
	for name, v := range straight.Params {
		h, d := v.Value.F32(), second.Params[name].Value.F32()
		for i := range h {
			if math.Abs(float64(d[i]-h[i])) > 1e-6+1e-5*math.Abs(float64(h[i])) {
				t.Fatalf("%s[%d]: %v resumed, %v straight", name, i, d[i], h[i])
			}
		}
	}
}

// The same LoRA run, dropout on, on the CPU and on the GPU (its device optimizer step,
// clipping active) follows step by step. The GPU's float32 mode: losses
// and gradient norms within 1e-4 relative (summation order only, as
// between the host and device optimizer paths above; measured under ptxsim
// ≤ 1.1e-7). Its bf16 mode (tensor-core GEMMs on bf16 operands, every
// product's operands rounded to 8 bits of mantissa): gradient norms within
// 2e-2, TestParityCUDABF16's bound on each gradient tensor, which bounds
// their norm too; losses within 5e-3, a mean over every label whose
// per-token errors mostly cancel (the parity fixtures' bf16 loss errors
// are 2e-5 to 1.5e-4). Measured under ptxsim: losses ≤ 1.5e-4, norms ≤
// 1.7e-3 over the 3 steps. With bf16 activations (every op's output
// stored in bf16, LoRA masters and the optimizer in float32): losses
// within the same 5e-3, gradient norms within 4e-2,
// TestParityCUDABF16Activations' bound on each gradient tensor; measured
// under ptxsim: losses ≤ 2e-4, norms ≤ 3.3e-3.
func TestTrainerOnGPUFollowsTheCPU(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	const steps, clip = 3, 1.0
	type trace struct{ losses, norms []float64 }
	fit := func(b tensor.Backend, dt tensor.DType) trace {
		// LoRA dropout on: each device draws its masks itself from the same
		// stream (kernels/dropout), so both runs drop the same elements; a
		// GPU mask that differed would move the losses by far more than
		// the bounds.
		r := gpuRunDropout(t, b, steps, clip, dt)
		seen := &pathSeen{}
		r.Callbacks = []train.Callback{seen}
		if err := r.Fit(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(r.State.Losses) != steps || len(seen.norms) != steps {
			t.Fatalf("%s: %d losses and %d norms for %d steps", b.Name(), len(r.State.Losses), len(seen.norms), steps)
		}
		return trace{r.State.Losses, seen.norms}
	}
	cpu := fit(tensor.CPUDefault(), 0)
	for _, c := range []struct {
		name           string
		opt            cudabackend.Options
		dt             tensor.DType
		tolLoss, tolGN float64
	}{
		{"f32", cudabackend.Options{}, 0, 1e-4, 1e-4},
		{"bf16", cudabackend.Options{BF16MatMul: true}, 0, 5e-3, 2e-2},
		{"bf16 activations", cudabackend.Options{BF16MatMul: true}, tensor.BF16, 5e-3, 4e-2},
	} {
		b, err := cudabackend.Open(c.opt)
		if err != nil {
			t.Fatal(err)
		}
		gpu := fit(b, c.dt)
		for i := 0; i < steps; i++ {
			for _, q := range []struct {
				what          string
				got, cpu, tol float64
			}{{"loss", gpu.losses[i], cpu.losses[i], c.tolLoss}, {"gradient norm", gpu.norms[i], cpu.norms[i], c.tolGN}} {
				e := math.Abs(q.got-q.cpu) / math.Abs(q.cpu)
				t.Logf("%s step %d %s: %.6g on the GPU, %.6g on the CPU, relative difference %.2g (bound %g)", c.name, i+1, q.what, q.got, q.cpu, e, q.tol)
				if !(e <= q.tol) {
					t.Errorf("%s step %d: %s %v on the GPU, %v on the CPU: relative difference %.2g > %g", c.name, i+1, q.what, q.got, q.cpu, e, q.tol)
				}
			}
		}
	}
}

// waitsSeen records, for each step, the driver calls after which the host
// waited for the GPU (cuda.HostWaits) and the kernels queued.
type waitsSeen struct {
	train.Base
	dev      *cuda.Device
	last     map[string]int64
	waits    []map[string]int64
	launches []int64
}

func (w *waitsSeen) OnTrainStart(*train.Trainer) error {
	w.last = w.dev.CallCounts()
	return nil
}

func (w *waitsSeen) OnStepEnd(*train.Trainer, train.Metrics) error {
	now := w.dev.CallCounts()
	w.waits = append(w.waits, cuda.HostWaits(w.last, now))
	w.launches = append(w.launches, now["cuLaunchKernel"]-w.last["cuLaunchKernel"])
	w.last = now
	return nil
}

// A training step on the GPU path users get (bf16 activations, the device
// optimizer, LoRA dropout drawn on the device), plain and with offloaded
// checkpoints, makes the host wait for the GPU only at its end: once for
// the gradient norm (the skip guards and the log read it before the
// update) and once per micro-batch's loss, read after it with the queue
// already empty. Everything in between (the batch's upload, its shifted
// labels, RoPE tables, the ids' range checks, the loss's count of labelled
// tokens and the scale of its gradient) must not wait: each wait empties
// the GPU's queue, which then idles while the host queues the next
// kernels. The first step is left out: it loads modules and sets up the
// optimizer's tables.
func TestTrainerStepWaitsOnlyAtItsEnd(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	b, err := cudabackend.Open(cudabackend.Options{BF16MatMul: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, offload := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			const steps = 3
			r := gpuRunDropout(t, b, steps, 1, tensor.BF16)
			r.Cfg.Checkpointing, r.Cfg.OffloadCheckpoints = offload, offload
			seen := &waitsSeen{dev: b.CUDADevice()}
			r.Callbacks = []train.Callback{seen}
			if err := r.Fit(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(seen.waits) != steps {
				t.Fatalf("%d steps seen, want %d", len(seen.waits), steps)
			}
			want := map[string]int64{"cuMemcpyDtoH": int64(1 + r.Cfg.GradAccum)}
			for i := 1; i < steps; i++ {
				if !maps.Equal(seen.waits[i], want) {
					t.Errorf("step %d: the host waited after %v, want %v (the norm and %d losses)", i+1, seen.waits[i], want, r.Cfg.GradAccum)
				}
			}
			t.Logf("per step after the first: %v host waits, %d kernel launches", seen.waits[1:], seen.launches[1:])
		})
	}
}

// liveSeen records the device allocator's live bytes after each step.
type liveSeen struct {
	train.Base
	al   *cuda.Allocator
	live []int64
}

func (l *liveSeen) OnStepEnd(*train.Trainer, train.Metrics) error {
	l.live = append(l.live, l.al.Stats().Live)
	return nil
}

// A training step on the GPU path (bf16 activations, the device
// optimizer, dropout, checkpoints offloaded to host memory) gives back
// everything it made that does not outlive it, so the device's live bytes
// are the same after every step: with Go's collector off, anything left to
// it would show here (and on a GPU make the next step's request of its
// size miss the caching allocator's cache). The counting backend's
// TestStepsLeaveNothingToTheCollector checks the host optimizer's path
// and the plain one.
func TestTrainerStepsLeaveNothingOnTheDevice(t *testing.T) {
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip(reason)
	}
	b, err := cudabackend.Open(cudabackend.Options{BF16MatMul: true})
	if err != nil {
		t.Fatal(err)
	}
	const steps = 3
	r := gpuRunDropout(t, b, steps, 1, tensor.BF16)
	r.Cfg.Checkpointing, r.Cfg.OffloadCheckpoints = true, true
	seen := &liveSeen{al: b.CUDADevice().Allocator()}
	r.Callbacks = []train.Callback{seen}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if err := r.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// After the first step, which makes the optimizer's state.
	for i := 2; i < len(seen.live); i++ {
		if grew := seen.live[i] - seen.live[i-1]; grew != 0 {
			t.Errorf("step %d left %d bytes live on the device (after each step: %v)", i+1, grew, seen.live)
		}
	}
	t.Logf("live after each step: %v", seen.live)
}
