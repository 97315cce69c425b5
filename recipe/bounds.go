package recipe

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/sysmem"
	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// Bounds and the memory plan are checked before anything large is
// allocated: a rank of 10^8, a sequence of 10^8 tokens or a billion-row
// batch used to take the machine down (Go's fatal out of memory, the
// kernel's OOM killer) instead of being refused.

// maxBatchRows caps rows per micro-batch whatever the memory: beyond it a
// larger effective batch is grad_accum's job, and the products below stay
// far from overflow.
const maxBatchRows = 1 << 16

// MemoryPlan is the estimated peak memory of a training run, in bytes.
type MemoryPlan struct {
	Weights     float64 // the frozen base as stored (bf16, f32 or NF4)
	Adapters    float64 // LoRA weights, gradients and optimizer state
	Activations float64 // what one micro-batch keeps for the backward
	Logits      float64 // the fused LM-head/cross-entropy chunk and its gradient
	// Validation is what a validation batch's forward holds at its peak:
	// the logits of every row over the whole vocabulary (validation reads
	// them for accuracy; training's loss never makes them), the chunk of
	// them read back as float32, and the hidden states they come from.
	// The peak counts the larger of it and a step's activations and
	// logits: validation runs between steps.
	Validation float64
	Runtime    float64 // the process itself: code, tokenizer, data, Go runtime
	// Heap is the CPU's headroom: what the CPU pool's buffers hold beyond
	// their tensors (size classes, a shorter batch in a longer one's
	// buffers) and garbage the Go heap holds between collections (0 on a
	// GPU).
	Heap      float64
	Peak      float64 // the sum: the estimate of peak resident memory
	Available float64 // what the machine has free (0 = unknown), at most Cap
	Where     string  // "RAM" or the GPU's name
	// Cap is the device-memory cap (training.max_device_memory, in
	// bytes) the run plans for; 0: none.
	Cap float64
	// Host is what training.offload_checkpoints holds in pinned host
	// memory instead (not part of Peak).
	Host float64
}

// String is the line a run prints before training.
func (p MemoryPlan) String() string {
	s := fmt.Sprintf("memory: peak ≈ %s (weights %s, adapters+optimizer %s, activations %s per micro-batch, logits %s, runtime %s, heap headroom %s)",
		gib(p.Peak), gib(p.Weights), gib(p.Adapters), gib(p.Activations), gib(p.Logits), gib(p.Runtime), gib(p.Heap))
	if p.Validation > p.Activations+p.Logits {
		s += fmt.Sprintf("; validation's full-vocabulary logits %s, above a step's activations and logits, make the peak", gib(p.Validation))
	}
	if p.Cap > 0 {
		s += fmt.Sprintf("; %s available in %s under its cap of %s (training.max_device_memory)", gib(p.Available), p.Where, gib(p.Cap))
	} else if p.Available > 0 {
		s += fmt.Sprintf("; %s available in %s", gib(p.Available), p.Where)
	} else {
		s += "; available memory unknown"
	}
	if p.Host > 0 {
		s += fmt.Sprintf("; checkpoints offloaded to pinned host memory %s", gib(p.Host))
	}
	return s
}

func gib(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", b/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", b/(1<<10))
}

// preflight reads the model's config.json (not its weights), checks the
// run's bounds, opens the device and refuses a plan that does not fit it.
// The device is kept for loadBase.
func (o *Options) preflight(log io.Writer) error {
	cfg, err := nn.LoadConfig(o.ModelDir)
	if err != nil {
		return err
	}
	if err := o.checkBounds(cfg); err != nil {
		return err
	}
	d, err := o.requestDevice(log)
	if err != nil {
		return err
	}
	o.device = &d
	o.Precision = d.Precision()
	fmt.Fprintln(log, d.Describe())
	return o.planMemory(cfg, factsOf(d), log)
}

// deviceFacts is what the memory plan needs to know of the device (tests
// give made-up ones: no GPU is needed to check the planning).
type deviceFacts struct {
	gpu  bool
	name string  // the GPU's name
	free float64 // the GPU's free bytes (0: unknown)
	// hostFree is the RAM available for pinned host memory (offloaded
	// checkpoints) on a GPU run (0: unknown, not checked).
	hostFree float64
	// fallback: device auto found no GPU (why), for a cap it cannot apply.
	fallback string
}

func factsOf(d Device) deviceFacts {
	cb, ok := d.Backend.(*cudabackend.Backend)
	if !ok {
		return deviceFacts{fallback: d.Fallback}
	}
	f := deviceFacts{gpu: true, name: cb.CUDADevice().Name, hostFree: memAvailable()}
	if free, _, err := cb.CUDADevice().MemInfo(); err == nil {
		f.free = float64(free)
	}
	return f
}

// mlpChunkSetting is what planMemory says when it turns the MLP chunks on.
var mlpChunkSetting = fmt.Sprintf("training.mlp_chunk_tokens: %d", DefaultMLPChunkTokens)

// pinnableShare is the share of the available RAM offloaded checkpoints
// may pin: pinned pages cannot be swapped, and the process, its data and
// the rest of the machine need the remainder.
const pinnableShare = 0.8

// hostFits reports whether p's offloaded checkpoints fit the RAM the
// machine has (unknown RAM: not checked).
func (p MemoryPlan) hostFits(f deviceFacts) bool {
	return p.Host == 0 || f.hostFree == 0 || p.Host <= pinnableShare*f.hostFree
}

// planMemory prints the plan and refuses one that does not fit: the
// device's memory (under a cap, turning on the memory savers that make it
// fit, and saying so) and, for offloaded checkpoints, the RAM they pin.
// Otherwise it refuses with the arithmetic.
func (o *Options) planMemory(cfg nn.Config, f deviceFacts, log io.Writer) error {
	if !f.gpu {
		why := "the run is on the CPU"
		if f.fallback != "" {
			why = "device auto found no GPU (" + f.fallback + ")"
		}
		if o.MaxDeviceMemory > 0 {
			fmt.Fprintf(log, "memory: training.max_device_memory %s not applied: %s\n", gib(float64(o.MaxDeviceMemory)), why)
		}
		if o.OffloadCheckpoints {
			fmt.Fprintf(log, "memory: training.offload_checkpoints not applied: %s, whose memory is host memory already\n", why)
		}
	}
	plan := o.planFor(cfg, f)
	// Under a cap the plan does not fit, the memory savers that leave what
	// the run computes unchanged, added one at a time until it fits:
	// gradient checkpointing, its saved inputs in host memory, the MLP over
	// chunks of tokens. Nothing is turned on unless the end result fits.
	if plan.Cap > 0 && plan.Peak > plan.Available {
		c := *o
		var said []string
		for _, saver := range []struct {
			on      func(*Options) bool
			set     func(*Options)
			setting string
		}{
			{func(o *Options) bool { return o.GradCheckpointing }, func(o *Options) { o.GradCheckpointing = true }, "training.gradient_checkpointing: true"},
			{func(o *Options) bool { return o.OffloadCheckpoints }, func(o *Options) { o.OffloadCheckpoints = true }, "training.offload_checkpoints: true"},
			{func(o *Options) bool { return o.MLPChunkTokens > 0 }, func(o *Options) { o.MLPChunkTokens = DefaultMLPChunkTokens }, mlpChunkSetting},
		} {
			if saver.on(&c) || (saver.setting == mlpChunkSetting && c.Mode == PerSubject) {
				continue // on already, or not for per-subject adapters (Validate)
			}
			saver.set(&c)
			said = append(said, saver.setting)
			if p := c.planFor(cfg, f); p.Peak <= p.Available && p.hostFits(f) {
				fmt.Fprintf(log, "memory: peak ≈ %s exceeds the %s available under the device-memory cap; with %s ≈ %s: training with them\n",
					gib(plan.Peak), gib(plan.Available), strings.Join(said, ", "), gib(p.Peak))
				*o, plan = c, p
				break
			}
		}
	}
	fmt.Fprintln(log, plan)
	if note := collectorNote(plan, f, debug.SetMemoryLimit(-1)); note != "" {
		fmt.Fprintln(log, note)
	}
	if o.PaceCollector && !f.gpu {
		if pct, ok := collectorPercent(plan, o.NoCPUPool, os.Getenv("GOGC")); ok {
			debug.SetGCPercent(pct)
			fmt.Fprintf(log, "memory: Go's collector paced at GOGC=%d: the frozen weights and the step's recycled buffers (%s) are live all run, and at the default, 100, the heap would grow by their size again before each collection (the GOGC variable sets another)\n", pct, gib(plan.Weights+plan.Activations+plan.Logits))
		}
	}
	if !plan.hostFits(f) {
		msg := fmt.Sprintf("recipe: training.offload_checkpoints pins about %s of host memory for the saved block inputs, and the machine has %s available (at most %.0f%% of it may be pinned): lower training.batch_size (%d) or data.max_length (%d), or set training.offload_checkpoints: false",
			gib(plan.Host), gib(f.hostFree), 100*pinnableShare, o.BatchSize, o.SeqLen)
		if !o.IgnoreMemoryEstimate {
			return memoryPlanError(msg + " (or set training.ignore_memory_estimate: true to try anyway)")
		}
		fmt.Fprintf(log, "warning: %s; training anyway (training.ignore_memory_estimate)\n", msg)
	}
	if plan.Available > 0 && plan.Peak > plan.Available {
		where := fmt.Sprintf("%s has %s available", plan.Where, gib(plan.Available))
		if plan.Cap > 0 {
			where = fmt.Sprintf("%s under the device-memory cap of %s (training.max_device_memory, --max-device-memory)", where, gib(plan.Cap))
		}
		msg := fmt.Sprintf("recipe: the run needs about %s at its peak, %s (%s): %s",
			gib(plan.Peak), where, plan.sum(), plan.lowerWhat(o))
		if !o.IgnoreMemoryEstimate {
			return memoryPlanError(msg + " (or set training.ignore_memory_estimate: true to try anyway)")
		}
		fmt.Fprintf(log, "warning: %s; training anyway (training.ignore_memory_estimate)\n", msg)
	}
	return nil
}

// collectorNote warns a CPU run in a process without a soft memory limit
// (limit: debug.SetMemoryLimit(-1), math.MaxInt64 for none) whose plan
// fits in the memory available only if Go's collector keeps the heap near
// what is live: by default it lets the heap grow to twice that before it
// collects. The ftune command sets a limit; a program that embeds ftune
// may not have.
func collectorNote(plan MemoryPlan, f deviceFacts, limit int64) string {
	if f.gpu || limit != math.MaxInt64 || plan.Available <= 0 || 2*plan.Peak <= plan.Available {
		return ""
	}
	return fmt.Sprintf("note: Go's collector has no soft memory limit in this process, and may let the heap grow to twice the %s live before it collects, past the %s available: set one (GOMEMLIMIT, or debug.SetMemoryLimit; the ftune command sets 90%% of the machine's memory)",
		gib(plan.Peak), gib(plan.Available))
}

// collectorPercent is the GOGC a CPU run with plan sets (ok false: leave
// Go's default, 100, or the GOGC variable, env, in force).
//
// Go's collector lets the heap grow by GOGC% of what is live before it
// collects. Much of a CPU run's live heap is never garbage: its frozen
// weights, and the step's activations and logits, whose buffers the CPU
// pool hands from step to step (tensor.UseCPUPool). At 100 the heap grows
// by their size again; for a large model's weights:
// three 8B QLoRA steps on the CPU (weights 4.6 GiB, plan 5.7 GiB) peaked
// at 10.6 GiB of RSS at 100 and at 6.35 GiB at the 18 this picks, at the
// same seconds per step (bench/results/load-memory-2026-12-06.md). The
// percent returned lets the heap grow by what the rest of the plan holds
// (adapters, optimizer, runtime, headroom): 100·rest/peak, at least
// minCollectorPercent, and only where it is below halfCollectorPercent
// (what lasts is most of the plan). noPool: the run leaves its steps'
// memory to the collector (FTUNE_CPU_POOL=0).
func collectorPercent(plan MemoryPlan, noPool bool, env string) (int, bool) {
	if env != "" || plan.Peak <= 0 {
		return 0, false
	}
	lasting := plan.Weights + plan.Activations + plan.Logits
	if noPool {
		lasting = plan.Weights // the step's tensors are garbage after it
	}
	rest := max(plan.Peak-lasting, 0)
	pct := max(int(math.Round(100*rest/plan.Peak)), minCollectorPercent)
	return pct, pct < halfCollectorPercent
}

// minCollectorPercent keeps collections from following one another when
// the plan's rest is small, and halfCollectorPercent is where pacing starts.
const (
	minCollectorPercent  = 10
	halfCollectorPercent = 50
)

// checkBounds refuses ranks, lengths and batches the model and any machine
// cannot hold. cfg is the model's config.json.
func (o *Options) checkBounds(cfg nn.Config) error {
	if o.DType == "bf16" && cfg.TorchDType != "bfloat16" {
		return fmt.Errorf("recipe: model.dtype bf16: %s/config.json stores %q weights; converting them is not implemented (use model.dtype: auto)", o.ModelDir, cfg.TorchDType)
	}
	if o.batchRows() > maxBatchRows {
		what := "is more rows"
		if o.dpo() {
			what = fmt.Sprintf("pairs are %d rows, more", o.batchRows())
		}
		return fmt.Errorf("recipe: training.batch_size %d %s than one micro-batch can hold (at most %d); use training.grad_accum for a larger effective batch", o.BatchSize, what, maxBatchRows)
	}
	if o.SeqLen > cfg.MaxPositions {
		if !o.AllowLongerThanModel {
			return fmt.Errorf("recipe: data.max_length %d exceeds the model's max_position_embeddings (%d in %s/config.json): lower it, or set data.allow_longer_than_model: true to train on positions the model never saw",
				o.SeqLen, cfg.MaxPositions, o.ModelDir)
		}
	}
	if name, in, out, ok := smallestTarget(cfg, o.Targets); ok && o.R > min(in, out) {
		return fmt.Errorf("recipe: training.lora.r %d exceeds the dimensions of the adapted layer %s (%d → %d): a rank above min(in, out) = %d adds parameters, not capacity",
			o.R, name, in, out, min(in, out))
	}
	return nil
}

// projection is one decoder linear: its module name and dimensions.
type projection struct {
	name    string
	in, out int
}

// projections are the model's decoder linears (Phi-3's fused ones as
// they are stored).
func projections(c nn.Config) []projection {
	var out []projection
	for _, p := range c.Projections() {
		out = append(out, projection{p.Name, p.In, p.Out})
	}
	return out
}

// adapted lists the decoder projections the targets select ("all-linear",
// or module names matched on their last element, as PEFT matches them).
func adapted(c nn.Config, targets []string) []projection {
	all := len(targets) == 1 && strings.EqualFold(targets[0], "all-linear")
	var out []projection
	for _, p := range projections(c) {
		for _, t := range targets {
			if all || t == p.name || strings.HasSuffix(t, "."+p.name) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// savedParams counts the parameters of the modules_to_save copies: the
// embedding table and the LM head (vocab × hidden each), and decoder
// projections by their last name (in every layer).
func savedParams(c nn.Config, entries []string) float64 {
	n := 0.0
	for _, e := range entries {
		last := e[strings.LastIndexByte(e, '.')+1:]
		switch last {
		case "embed_tokens", "lm_head":
			n += float64(c.VocabSize) * float64(c.HiddenSize)
		}
		for _, p := range projections(c) {
			if p.name == last {
				n += float64(c.NumLayers) * float64(p.in) * float64(p.out)
			}
		}
	}
	return n
}

// smallestTarget is the adapted projection with the smallest min(in, out);
// ok is false when the targets name none (lora.New then says so).
func smallestTarget(c nn.Config, targets []string) (name string, in, out int, ok bool) {
	for _, p := range adapted(c, targets) {
		if !ok || min(p.in, p.out) < min(in, out) {
			name, in, out, ok = p.name, p.in, p.out, true
		}
	}
	return name, in, out, ok
}

// Calibration of the CPU estimate, measured on tiny-base (peak RSS of
// 4-step runs, batch 1-16, 32-512 tokens, with and without gradient
// checkpointing; see TestMemoryEstimateMatchesPeak):
//   - runtimeBytes: the process before training (code, tokenizer, bundled
//     data, evaluation scratch): 101 MiB measured for batch 1 × 32 tokens;
//   - heapHeadroom: memory beyond a micro-batch's live tensors, as a
//     fraction of them: garbage before a collection (0.19-0.25 measured
//     on Go's heap alone), or, with the CPU pool, its buffers' size-class
//     rounding and a shorter batch held in a longer one's buffers (the
//     main job's pool held 1.1-1.2 times the plan's activations and
//     logits).
const (
	runtimeBytes = 100 << 20
	heapHeadroom = 0.3
)

// memoryPlan estimates the peak of a training run on d.
func (o *Options) memoryPlan(c nn.Config, d Device) MemoryPlan { return o.planFor(c, factsOf(d)) }

// planFor estimates the peak of a training run on a device described by dev.
func (o *Options) planFor(c nn.Config, dev deviceFacts) MemoryPlan {
	f := func(n int) float64 { return float64(n) }
	H, I, V, L := f(c.HiddenSize), f(c.IntermediateSize), f(c.VocabSize), f(c.NumLayers)
	qd, kvd := f(c.NumHeads*c.HeadDim), f(c.NumKVHeads*c.HeadDim)
	var p MemoryPlan

	// Weights as stored: bf16 matrices stay bf16, others are widened to
	// float32; NF4 projections take half a byte plus a float32 absmax per
	// block of 64; norms are float32.
	matrix := 4.0
	if c.TorchDType == "bfloat16" {
		matrix = 2
	}
	// Activation bytes: bf16 on a GPU's bf16 path (every weight is then
	// bf16 too), float32 otherwise.
	act := 4.0
	if dev.gpu && o.Precision == "bf16" {
		act, matrix = 2, 2
	}
	// On a GPU every tensor takes a block of the caching allocator's size
	// class, up to a quarter more than its bytes (SmolLM2's hidden-size
	// activation at 4 × 2048 tokens: 10 MiB for 9): the plan counts each
	// tensor so (TestDevicePlanCoversTheCUDAStepAtFullSize). On the CPU,
	// bytes.
	alloc := func(bytes float64) float64 { return bytes }
	if dev.gpu {
		alloc = func(bytes float64) float64 { return float64(cuda.BlockBytes(int(math.Ceil(bytes)))) }
	}
	proj := 0.0
	for _, pr := range projections(c) {
		n := f(pr.in) * f(pr.out)
		if o.Load4Bit {
			proj += alloc(n/2) + alloc(n/64*4) // packed codes; an absmax per block of 64
		} else {
			proj += alloc(n * matrix)
		}
	}
	tables := 2.0
	if c.TieEmbeddings {
		tables = 1
	}
	p.Weights = L*proj + tables*alloc(V*H*matrix) + (2*L+1)*alloc(H*4)

	// Adapters: weights, gradients and optimizer state in float32 (AdamW
	// keeps two moments, SGD one).
	copies := 4.0
	if o.Optimizer == "sgd" {
		copies = 3
	}
	tokens := f(o.batchRows()) * f(o.SeqLen)
	// perToken is one activation of the given width per token, as
	// allocated.
	perToken := func(width float64) float64 { return alloc(tokens * act * width) }
	targets := adapted(c, o.Targets)
	loraParams, loraActs := 0.0, 0.0
	for _, t := range targets {
		loraParams += alloc(f(o.R)*f(t.in)*4) + alloc(f(o.R)*f(t.out)*4)
		// A·x: the dropout mask and x⊙mask are drawn again in the
		// backward (autograd.LoRALinear), and the output is the block's.
		loraActs += perToken(f(o.R))
		if o.DoRA {
			loraParams += alloc(f(t.out) * 4)  // the magnitude
			loraActs += 2 * perToken(f(t.out)) // the rescaled output and its factor
		}
	}
	adapters := 1.0
	if o.Mode == PerSubject {
		adapters = f(max(1, len(o.Subjects)))
	}
	p.Adapters = adapters * L * loraParams * copies
	// modules_to_save: full float32 copies, trained like the adapter.
	saved := savedParams(c, o.ModulesToSave)
	p.Adapters += saved * copies * 4

	// Activations kept for the backward, float32 per token: per decoder
	// block the input, the residual sum after attention, q and k after
	// RoPE (written over the projections: autograd's in-place ops), v, the
	// attention output, the MLP's gate and up (flash attention keeps no
	// T×T scores; the MLP's output becomes the next block's input), plus
	// the adapters' intermediates. The two norms' outputs and the MLP's
	// product are forgotten after their last forward use and computed
	// again by the backward (autograd's Tape.Forget), except under DoRA
	// with dropout, whose x⊙mask product reads them in the forward's way.
	// Gradient checkpointing keeps only each block's input and recomputes
	// one block at a time.
	held := 2*perToken(H) + 2*perToken(qd) + 2*perToken(kvd) + 2*perToken(I)
	if o.DoRA && o.Dropout > 0 {
		held += 2*perToken(H) + perToken(I)
	}
	// A block's backward adds its transients to what the blocks hold: the
	// MLP's gradients and its activation computed again (4 MLP widths) and
	// hidden-size gradients (2 widths). The MLP over chunks of tokens
	// (nn.Model.MLPChunkTokens) keeps each chunk's output and their
	// concatenation (2 hidden widths) instead of gate and up (2 MLP widths)
	// per token, and has the MLP's transients for one chunk at a time
	// (gate, up, the activation and their gradients: 6 MLP widths a token
	// of the chunk) beside 3 hidden-size gradients a token. Calibrated on
	// the counting backend, which releases as the GPU's allocator does
	// (TestGPUPlanMatchesCountedStep): the counted peak at Llama-3-8B's
	// widths, checkpointed with offload, grows by 121k floats a token with
	// the whole MLP and 51k with chunks.
	backward := 4*perToken(I) + 2*perToken(H)
	if c := f(o.MLPChunkTokens); c > 0 && c < tokens {
		held += 2*perToken(H) - 2*perToken(I)
		backward = 3*perToken(H) + 6*alloc(c*act*I)
	}
	block := held + loraActs
	if o.GradCheckpointing {
		kept := L // block inputs on the device
		if o.OffloadCheckpoints && dev.gpu {
			// Every block's input waits in host memory, the first too
			// unless the embeddings are trained (modules_to_save: then it
			// is a recorded op's output, which stays). Two are on the
			// device at a time: the one the backward is in, and the one
			// before it, coming back (autograd's Tape.Offload prefetches
			// it); in the forward, the latest one's block waits for its
			// copy to the host.
			moved := L
			if slices.ContainsFunc(o.ModulesToSave, func(s string) bool { return s == "embed_tokens" || strings.HasSuffix(s, ".embed_tokens") }) {
				moved = L - 1
			}
			p.Host = moved * tokens * act * H
			kept = max(L-moved+2, 2)
		}
		p.Activations = kept*perToken(H) + block + backward
	} else {
		p.Activations = L*block + backward
	}
	p.Activations += 2 * perToken(H) // embeddings and the final norm
	// The loss never materialises [tokens, vocab] logits: the LM head and
	// the cross-entropy run over chunks of rows (at most 64 MiB of logits),
	// logits and gradient.
	p.Logits = 2*alloc(min(tokens, f(autograd.LossChunkRows(int(V))))*V*4) + perToken(H)
	if slices.ContainsFunc(o.ModulesToSave, func(s string) bool { return s == "lm_head" || strings.HasSuffix(s, ".lm_head") }) {
		// A copied LM head computes all logits at once, and their gradient.
		p.Logits = 2*alloc(tokens*V*4) + alloc(tokens*H*4)
	}

	// Validation (before and after training, every eval.every steps)
	// runs batches of the training's shape on an inference tape, which
	// gives each block's activations back as it goes, but computes all
	// the logits, [tokens, vocab], and reads them back a chunk of rows
	// at a time as float32 (train.tokenStats: 4 MiB). With a large
	// vocabulary they outgrow a checkpointed step: Llama-3's 128256 at
	// 4 × 2048 tokens are 2 GiB in bf16, 4 in float32.
	readRows := max(1, (4<<20)/(4*V))
	p.Validation = alloc(tokens*V*act) + alloc(min(tokens, readRows)*V*4) + 2*perToken(H)

	live := p.Weights + p.Adapters + p.step()
	if dev.gpu {
		p.Where, p.Available = dev.name, dev.free
		if o.MaxDeviceMemory > 0 {
			p.Cap = float64(o.MaxDeviceMemory)
			if p.Available == 0 || p.Cap < p.Available {
				p.Available = p.Cap
			}
		}
		p.Peak = live
		return p
	}
	p.Where, p.Runtime = "RAM", runtimeBytes
	p.Heap = heapHeadroom * p.step()
	p.Peak = live + p.Runtime + p.Heap
	p.Available = memAvailable()
	return p
}

// step is the larger of what a training step holds (activations and
// logits) and what a validation batch does.
func (p MemoryPlan) step() float64 { return max(p.Activations+p.Logits, p.Validation) }

// sum is the arithmetic of Peak.
func (p MemoryPlan) sum() string {
	s := fmt.Sprintf("weights %s + adapters and optimizer %s + activations %s + logits %s", gib(p.Weights), gib(p.Adapters), gib(p.Activations), gib(p.Logits))
	if p.Validation > p.Activations+p.Logits {
		s = fmt.Sprintf("weights %s + adapters and optimizer %s + validation's logits %s (above activations %s + logits %s)", gib(p.Weights), gib(p.Adapters), gib(p.Validation), gib(p.Activations), gib(p.Logits))
	}
	if p.Runtime > 0 || p.Heap > 0 {
		s += fmt.Sprintf(" + runtime %s + heap headroom %s", gib(p.Runtime), gib(p.Heap))
	}
	return s
}

// lowerWhat names the settings that shrink the largest part of the plan.
func (p MemoryPlan) lowerWhat(o *Options) string {
	switch {
	case p.step() >= p.Weights && p.step() >= p.Adapters:
		s := fmt.Sprintf("lower training.batch_size (%d) or data.max_length (%d)", o.BatchSize, o.SeqLen)
		if !o.GradCheckpointing && p.Activations+p.Logits >= p.Validation {
			s += ", or set training.gradient_checkpointing: true"
		}
		return s
	case p.Adapters >= p.Weights:
		return fmt.Sprintf("lower training.lora.r (%d) or adapt fewer training.lora.targets", o.R)
	}
	if !o.Load4Bit {
		return "set model.load_in_4bit: true (NF4 base weights), or use a smaller model"
	}
	return "use a smaller model"
}

// memAvailable is MemAvailable in bytes (0 where it is not known: the
// plan is printed but not enforced).
func memAvailable() float64 { return float64(sysmem.Available()) }

// ErrMemoryPlan is matched (errors.Is) by the error of a run refused
// before its first step because its memory plan does not fit what the
// machine has (RAM, the GPU, its device-memory cap, or pinnable host
// memory): a caller can tell it from a failure, and lower the batch or
// the length, or set IgnoreMemoryEstimate to try anyway.
var ErrMemoryPlan = errors.New("the run's memory plan does not fit")

// memoryPlanError is a refusal for the memory plan: its text says the
// arithmetic, and it matches ErrMemoryPlan without saying so again.
type memoryPlanError string

func (e memoryPlanError) Error() string        { return string(e) }
func (e memoryPlanError) Is(target error) bool { return target == ErrMemoryPlan }
