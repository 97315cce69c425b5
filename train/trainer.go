package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
)

// Optimizer is what the trainer needs of train/optim's AdamW and SGD.
type Optimizer interface {
	Step(params []optim.Param) error
	SetLR(lr float64)
	State() optim.State
	LoadState(optim.State) error
}

// Config is the loop's settings.
type Config struct {
	MaxSteps      int            // optimizer steps; 0 = MaxEpochs decides
	MaxEpochs     int            // 0 = 1 when MaxSteps is 0
	GradAccum     int            // micro-batches per step (≥ 1)
	ClipNorm      float64        // global gradient norm limit; 0 = off
	LR            float64        // peak learning rate
	Schedule      optim.Schedule // multiplier per step; nil = constant
	EvalEvery     int            // validate every N steps; 0 = at epoch ends
	LogEvery      int            // metrics every N steps (default 1)
	MaxTime       time.Duration  // stop (with a checkpoint) after this long; 0 = none
	SpikeFactor   float64        // skip a step whose loss exceeds SpikeFactor × the running mean; 0 = off
	MaxBadSteps   int            // consecutive skipped steps before giving up (default 5)
	MaxDeadSteps  int            // consecutive steps with a gradient norm of exactly 0 before the run counts as collapsed (default 5)
	LossChunk     int            // rows per fused LM-head/cross-entropy chunk
	Checkpointing bool           // recompute decoder blocks in the backward
	// OffloadCheckpoints, with Checkpointing, holds each block's saved
	// input in host memory between the forward and the backward on a
	// backend that offers it (nn.Model.OffloadCheckpoints; the CPU ignores
	// it: its memory is host memory).
	OffloadCheckpoints bool
	// MLPChunkTokens > 0 runs each block's MLP over chunks of this many
	// tokens, each recomputed by its own backward
	// (nn.Model.MLPChunkTokens).
	MLPChunkTokens int
	// HeapOnly leaves a CPU step's memory to Go's collector instead of
	// recycling the buffers the step releases (tensor.UseCPUPool), which
	// Fit otherwise does on the CPU: for measuring the difference (1.8×
	// on the main job, bench/results/cpu-pool-2026-12-06.md).
	HeapOnly      bool
	ValMaxBatches int // cap on validation batches; 0 = all
}

// State is where training is; it is saved in checkpoints.
type State struct {
	Step         int       `json:"step"`
	Epoch        int       `json:"epoch"`
	BatchIndex   int       `json:"batch_index"` // batches of Epoch already consumed
	Tokens       int64     `json:"tokens"`
	LossEMA      float64   `json:"loss_ema"`
	BadSteps     int       `json:"bad_steps"`
	DeadSteps    int       `json:"dead_steps"` // consecutive steps with a zero gradient
	SkippedSteps int       `json:"skipped_steps"`
	LastLoss     float64   `json:"last_loss"`
	LastLR       float64   `json:"last_lr"`
	Losses       []float64 `json:"-"`
	BestMetric   float64   `json:"best_metric"` // early stopping's best monitored value
	// ValidationPending: the validation owed at Step had not finished
	// (interrupted) when the checkpoint was written; Fit redoes it first.
	ValidationPending bool   `json:"validation_pending,omitempty"`
	Stop              bool   `json:"-"`
	StopReason        string `json:"-"`
}

// Metrics of one step or one validation.
type Metrics map[string]float64

// Forward runs one batch and returns the loss; the trainer owns the tape.
// The default (Trainer.Forward nil) calls Model.Forward with the fused
// LM-head loss; multi-subject training routes rows through adapters here.
type ForwardFunc func(tp *autograd.Tape, b Batch, opt nn.ForwardOptions) (nn.Output, error)

// Trainer runs the optimisation loop.
type Trainer struct {
	Model     *nn.Model
	Params    map[string]*autograd.Var // trainable parameters by name
	Opt       Optimizer
	Cfg       Config
	Train     Loader
	Val       Loader // may be nil
	Callbacks []Callback
	Forward   ForwardFunc
	// Validation, when set, is what Validate measures instead of the
	// next-token loss, perplexity and accuracy: the metrics of an
	// objective whose Forward returns no logits (DPO's). Its "val/loss"
	// is what checkpoints and early stopping monitor by default.
	Validation func(ctx context.Context, l Loader) (Metrics, error)
	// RNG lets checkpoints save and restore random streams (dropout, data
	// augmentation) beyond the loader's position.
	RNG   RNGStates
	State State
	// Comm is the job's workers for data-parallel training (nil or a
	// world of one: this process alone). See distributed.go.
	Comm dist.Comm
	// SkipRows, with several workers, advances the random streams a
	// training forward draws per row (LoRA dropout) past rows [r0, r1) of
	// micro-batch b that other workers compute, so that every stream
	// draws what it would in one process. Nil when nothing draws per row.
	SkipRows func(b Batch, r0, r1 int) error
	// DP tunes the gradient exchange between workers (distributed_sync.go).
	DP DataParallel
	// DeviceStep, when set, makes the optimizer's device step for a
	// single-worker run instead of the backend's choice (OptimizerPath):
	// another device's optimizer, or a test's; returning nil keeps the
	// host path.
	DeviceStep func(t *Trainer) (optim.DeviceStep, error)
	// LossItems is what a batch's loss is the mean of, which weighs the
	// micro-batches of a step (see step): nil is its labelled tokens
	// (b.Labelled), the next-token loss's; DPO's loss is a mean over
	// preference pairs.
	LossItems func(b Batch) int
	// dev is the device step while Fit runs on it (nil: the host path);
	// losses are the step's micro-batch losses it keeps on the device;
	// optPath is the path Fit took (see OptimizerPath).
	dev     optim.DeviceStep
	losses  []pendingLoss
	optPath string
	// shardRow0 and shardRows: see MicroShard.
	shardRow0, shardRows int
	// leafDone is the tape hook of the running micro-batch (gradSync.hook).
	leafDone func(*autograd.Var)
	// microWeight is the running micro-batch's share of its step's loss
	// items, and microPos the loader's position just after it was read
	// (MicroPosition).
	microWeight float64
	microPos    [2]int
	start       time.Time
	// labelledInEpoch: a micro-batch of the running epoch had a labelled
	// token (Fit's check for data with none).
	labelledInEpoch bool
}

// RNGStates saves and restores random streams for exact resume.
type RNGStates interface {
	SaveRNG() (map[string][]byte, error)
	LoadRNG(map[string][]byte) error
}

// useCPUPool holds the CPU pool (tensor.UseCPUPool) for a model on the CPU
// unless the run is HeapOnly, until the returned func is called.
func (t *Trainer) useCPUPool() (done func()) {
	if _, cpu := t.Model.Backend.(*tensor.CPUBackend); cpu && !t.Cfg.HeapOnly {
		return tensor.UseCPUPool()
	}
	return func() {}
}

func (t *Trainer) forward(tp *autograd.Tape, b Batch, lossOnly bool) (nn.Output, error) {
	opt := nn.ForwardOptions{LossOnly: lossOnly, LossChunk: t.Cfg.LossChunk}
	if t.Forward != nil {
		return t.Forward(tp, b, opt)
	}
	return t.Model.Forward(tp, b.Batch, opt)
}

func (t *Trainer) names() []string {
	out := make([]string, 0, len(t.Params))
	for k := range t.Params {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// bind exposes parameters to the optimizer as slices: CPU tensors
// directly; tensors on another device through host copies that upload
// writes back after the step (the adapter is small next to a step's work).
func (t *Trainer) bind() []optim.Param {
	var out []optim.Param
	for _, name := range t.names() {
		v := t.Params[name]
		var p optim.Param
		if v.Value.Device().Kind == tensor.CPU {
			p = optim.Param{Name: name, Data: tensor.F32Data(v.Value)}
			if v.Grad != nil {
				p.Grad = tensor.F32Data(v.Grad)
			}
		} else {
			p = optim.Param{Name: name, Data: v.Value.F32()}
			if v.Grad != nil {
				p.Grad = v.Grad.F32()
			}
		}
		out = append(out, p)
	}
	return out
}

// upload writes host copies made by bind back to device parameters.
func (t *Trainer) upload(params []optim.Param) {
	for _, p := range params {
		v := t.Params[p.Name]
		if v.Value.Device().Kind != tensor.CPU {
			v.Value.CopyFrom(tensor.FromHost(v.Value.Backend(), tensor.F32, p.Data, v.Value.Shape()...).To(v.Value.DType()))
		}
	}
}

// zeroGrad drops every parameter's gradient, the optimizer being done with
// it (or the step skipped), and gives its device memory back now. A
// parameter's gradient is its own (autograd copies one it would share), and
// left to Go's collector, the next step's gradients would find no block in
// the caching allocator's cache and grow the reserve until a forced
// collection: Llama-3-8B at r 32 made 226 device allocations a step that
// way (bench/results/gpu-host-time-2026-12-05.md).
func (t *Trainer) zeroGrad() error {
	var errs []error
	for _, v := range t.Params {
		if v.Grad != nil {
			errs = append(errs, tensor.Release(v.Grad))
		}
		v.ZeroGrad()
	}
	return errors.Join(errs...)
}

func (t *Trainer) totalSteps() int {
	if t.Cfg.MaxSteps > 0 {
		return t.Cfg.MaxSteps
	}
	// An epoch's last step may be short (step applies it), as in
	// transformers' Trainer: ceil(batches / GradAccum) steps an epoch.
	e, k := max(t.Cfg.MaxEpochs, 1), max(t.Cfg.GradAccum, 1)
	return e * max((t.Train.Len()+k-1)/k, 1)
}

// TotalSteps is the number of optimizer steps Fit will run.
func (t *Trainer) TotalSteps() int { return t.totalSteps() }

// Fit trains until MaxSteps/MaxEpochs, a callback's stop, MaxTime, or ctx
// is cancelled: then the current micro-batch finishes, a step cut short is
// undone (see abandon), State.StopReason is "interrupted", and callbacks'
// OnTrainEnd runs, where the Checkpointer saves the last completed step.
func (t *Trainer) Fit(ctx context.Context) (err error) {
	if t.Cfg.GradAccum <= 0 {
		t.Cfg.GradAccum = 1
	}
	if t.Cfg.LogEvery <= 0 {
		t.Cfg.LogEvery = 1
	}
	if t.Cfg.MaxBadSteps <= 0 {
		t.Cfg.MaxBadSteps = 5
	}
	if t.Cfg.MaxDeadSteps <= 0 {
		t.Cfg.MaxDeadSteps = 5
	}
	if len(t.Params) == 0 {
		return fmt.Errorf("train: no trainable parameters")
	}
	if t.Cfg.OffloadCheckpoints && !t.Cfg.Checkpointing {
		return fmt.Errorf("train: OffloadCheckpoints moves Checkpointing's saved block inputs to host memory, and Checkpointing is off")
	}
	if t.Cfg.MLPChunkTokens < 0 {
		return fmt.Errorf("train: MLPChunkTokens %d: want ≥ 0", t.Cfg.MLPChunkTokens)
	}
	t.Model.Checkpointing, t.Model.OffloadCheckpoints = t.Cfg.Checkpointing, t.Cfg.OffloadCheckpoints
	t.Model.MLPChunkTokens = t.Cfg.MLPChunkTokens
	// The tape releases each activation and gradient after its last use;
	// the pool hands the buffers to the next step.
	defer t.useCPUPool()()
	if err := t.startDeviceStep(); err != nil {
		return err
	}
	defer func() {
		if e := t.endDeviceStep(); err == nil {
			err = e
		}
	}()
	t.start = time.Now()
	total := t.totalSteps()
	for _, c := range t.Callbacks {
		if err := c.OnTrainStart(t); err != nil {
			return err
		}
	}
	if l, ok := t.Train.(interface{ Seek(int, int) }); ok {
		l.Seek(t.State.Epoch, t.State.BatchIndex)
	}
	maxEpochs := t.Cfg.MaxEpochs
	if t.Cfg.MaxSteps > 0 {
		maxEpochs = math.MaxInt
	} else if maxEpochs == 0 {
		maxEpochs = 1
	}
	size, _ := t.world()
	if size > 1 {
		if err := t.checkInSync(); err != nil {
			return err
		}
	}
	// An epoch that starts here and ends without a step had no labelled
	// token in any batch: every later epoch would be the same, so it is an
	// error, not a loop that never ends (MaxSteps sets maxEpochs to
	// infinity).
	freshEpoch := t.State.BatchIndex == 0
	t.labelledInEpoch = false
	if t.State.ValidationPending {
		// Restored from a checkpoint whose step's validation was
		// interrupted: it runs now, as it would have then.
		if err := t.runValidation(ctx); errors.Is(err, errValidationStopped) {
			t.State.Stop, t.State.StopReason = true, "interrupted"
		} else if err != nil {
			return err
		} else if err := t.stepDone(); err != nil {
			return err
		}
	}
	for t.State.Step < total && t.State.Epoch < maxEpochs && !t.State.Stop {
		interrupted := ctx.Err() != nil
		outOfTime := t.Cfg.MaxTime > 0 && time.Since(t.start) > t.Cfg.MaxTime
		if size > 1 {
			reason, err := t.agreeStop(interrupted, outOfTime)
			if err != nil {
				return err
			}
			interrupted, outOfTime = reason == "interrupted", reason == "max_time"
		}
		if interrupted {
			t.State.Stop, t.State.StopReason = true, "interrupted"
			break
		}
		if outOfTime {
			t.State.Stop, t.State.StopReason = true, "max_time"
			break
		}
		before := t.State.Step
		done, err := t.step(ctx, total)
		if errors.Is(err, errStepAbandoned) {
			t.State.Stop, t.State.StopReason = true, "interrupted"
			break
		}
		// A validation stopped by ctx follows a complete step: the
		// epoch's bookkeeping below still happens, then Fit stops.
		validationStopped := errors.Is(err, errValidationStopped)
		if err != nil && !validationStopped {
			return err
		}
		// A step that took the epoch's last batch ends the epoch now
		// (the next Next would say io.EOF), so that the epoch's
		// validation comes before the step's checkpoint (stepDone), as
		// for a short last step. Where the loop would stop anyway, or
		// with several workers (who agree on stopping at the loop's
		// top), the epoch ends at the next step, as before.
		if !done && err == nil && size == 1 && t.State.Step > before && t.State.Step < total && !t.State.Stop && ctx.Err() == nil && t.epochConsumed() {
			done = true
		}
		validated := false
		if done { // epoch ended
			if freshEpoch && !t.labelledInEpoch {
				return fmt.Errorf("train: epoch %d of the training data has no batch with a labelled token (%d batches): nothing to train on", t.State.Epoch, t.State.BatchIndex)
			}
			freshEpoch, t.labelledInEpoch = true, false
			t.State.Epoch++
			t.State.BatchIndex = 0
			t.Train.StartEpoch(t.State.Epoch)
			if !validationStopped && t.Cfg.EvalEvery == 0 && t.Val != nil {
				err := t.runValidation(ctx)
				validationStopped = errors.Is(err, errValidationStopped)
				if err != nil && !validationStopped {
					return err
				}
				validated = !validationStopped
			}
		}
		if validationStopped {
			// The step is checkpointed by OnTrainEnd with its validation
			// pending: a resumed run redoes it.
			t.State.Stop, t.State.StopReason = true, "interrupted"
			break
		}
		if t.State.Step > before || validated {
			if err := t.stepDone(); err != nil {
				return err
			}
		}
	}
	if t.dev != nil { // the last update's check, before anything exports it
		if ok, err := t.dev.ParamsFinite(); err != nil {
			return err
		} else if !ok {
			return t.collapsedBefore(t.State.Step)
		}
	}
	for _, c := range t.Callbacks {
		if err := c.OnTrainEnd(t); err != nil {
			return err
		}
	}
	return t.deviceStateErr()
}

// microBatch runs the forward and backward of one micro-batch, adding its
// gradient, weighted by the micro-batch's share of the step's loss items
// (microWeight), to the parameters', and returns its loss so weighted.
func (t *Trainer) microBatch(b Batch) (float64, error) {
	return t.microBatchScaled(b, 1)
}

// microBatchScaled is microBatch with the loss weighted by share too (a
// worker's share of a micro-batch's labelled tokens).
func (t *Trainer) microBatchScaled(b Batch, share float64) (float64, error) {
	share *= t.microWeight
	// The micro-batch's CPU tensors take buffers the previous one released
	// (a no-op without the pool: on a GPU, or HeapOnly).
	defer tensor.ServeFromCPUPool()()
	tp := autograd.NewTape()
	// Activations go back to a GPU's caching allocator, or the CPU's pool,
	// as the backward passes their last use; only the loss is read after.
	tp.ReleaseActivations = true
	tp.LeafDone = t.leafDone
	out, err := t.forward(tp, b, true)
	if err != nil {
		return 0, err
	}
	if t.dev != nil {
		// The loss stays on the device (a copy: the backward may release
		// the tape's) and is read with the step's gradient norm: no
		// synchronisation between the forward and the backward.
		t.losses = append(t.losses, pendingLoss{v: out.Loss.Value.Clone(), share: share})
		return 0, t.backward(tp, out.Loss, share)
	}
	loss := out.Loss.Value.Item()
	return loss * share, t.backward(tp, out.Loss, share)
}

// backward runs the backward from the micro-batch's loss scaled by its
// share of the step, and gives the scaled scalar back after it (Backward
// keeps its root for the caller; nothing reads this one).
func (t *Trainer) backward(tp *autograd.Tape, loss *autograd.Var, share float64) error {
	root := tp.Scale(loss, share)
	if err := tp.Backward(root); err != nil {
		return err
	}
	return tensor.Release(root.Value)
}

// queued is a micro-batch read for the running step, with the loader's
// position just after it was read.
type queued struct {
	b   Batch
	pos [2]int
}

// readStep reads the step's GradAccum micro-batches (fewer at the end of
// the epoch: epochEnd) and their loss items. A micro-batch without a
// labelled token is one of them, as in transformers' Trainer: it weighs
// nothing, and the step does not run it.
func (t *Trainer) readStep() (queue []queued, items int, epochEnd bool, err error) {
	for len(queue) < t.Cfg.GradAccum {
		b, err := t.Train.Next()
		if err == io.EOF {
			return queue, items, true, nil
		}
		if err != nil {
			return nil, 0, false, errors.Join(err, releaseQueued(queue))
		}
		t.State.BatchIndex++
		epoch, index := t.Train.Position()
		queue = append(queue, queued{b, [2]int{epoch, index}})
		if b.Labelled == 0 {
			continue
		}
		n := t.lossItems(b)
		if n <= 0 {
			return nil, 0, false, errors.Join(fmt.Errorf("train: a micro-batch with %d labelled tokens has %d loss items", b.Labelled, n), releaseQueued(queue))
		}
		items += n
	}
	return queue, items, false, nil
}

// releaseQueued releases micro-batches a step read and will not run.
func releaseQueued(q []queued) error {
	var errs []error
	for _, m := range q {
		errs = append(errs, m.b.Release())
	}
	return errors.Join(errs...)
}

// lossItems is LossItems, or b's labelled tokens.
func (t *Trainer) lossItems(b Batch) int {
	if t.LossItems != nil {
		return t.LossItems(b)
	}
	return b.Labelled
}

// MicroPosition is the training loader's position (epoch, batches
// consumed in it) just after it handed out the micro-batch that is
// running: what a forward keys per-batch randomness on (NEFTune's noise),
// since a step reads all its micro-batches before it runs the first.
func (t *Trainer) MicroPosition() (epoch, index int) {
	return t.microPos[0], t.microPos[1]
}

// step runs one optimizer step of GradAccum micro-batches. It reports
// epochEnd when the loader ran out before the step filled; a partial step
// is still applied. A ctx cancelled between micro-batches abandons the
// step (a long step does not hold up Ctrl-C for all its micro-batches).
//
// The step's micro-batches are read before any runs, and each one's loss
// (a mean over its loss items: labelled tokens, see LossItems) is weighted
// by its share of the step's items: the step's gradient and loss are those
// of one batch of all its rows, whatever the number of micro-batches, as
// transformers' Trainer computes them (num_items_in_batch, since 4.46;
// what Axolotl, LLaMA-Factory, TRL and Unsloth train with). The mean of
// micro-batch means, which ftune took before, weighs a micro-batch of few
// labelled tokens (short answers, a step's short last one) as much as a
// full one.
func (t *Trainer) step(ctx context.Context, total int) (epochEnd bool, err error) {
	began := time.Now()
	t.losses = t.losses[:0] // a step abandoned before left its losses
	for _, c := range t.Callbacks {
		if ss, ok := c.(StepStarter); ok {
			if err := ss.OnStepStart(t); err != nil {
				return false, err
			}
		}
	}
	start, err := t.markStepStart()
	if err != nil {
		return false, err
	}
	var lossSum float64
	tokens := 0
	size, _ := t.world()
	queue, items, epochEnd, err := t.readStep()
	if err != nil {
		return false, err
	}
	if items == 0 { // nothing labelled: no step
		return epochEnd, releaseQueued(queue)
	}
	micro := 0
	tree := newGradTree(t.Cfg.GradAccum) // see distributed_accum.go
	sync := t.startSync(tree)            // nil with one worker
	var slotLoss []float64               // with several workers: each micro-batch's, by slot
	if sync != nil {
		slotLoss = make([]float64, len(queue))
	}
	for ; micro < len(queue); micro++ {
		b := queue[micro].b
		// With several workers the step runs to its end: the others
		// would wait for its all-reduce (Fit agrees on stopping).
		if size == 1 && micro > 0 && ctx.Err() != nil {
			return false, errors.Join(t.abandon(start), releaseQueued(queue[micro:]))
		}
		if b.Labelled == 0 { // weighs nothing: an absent leaf of the tree
			if err := b.Release(); err != nil {
				return false, errors.Join(err, releaseQueued(queue[micro+1:]))
			}
			tree.take(t.Params, micro)
			continue
		}
		t.microWeight = float64(t.lossItems(b)) / float64(items)
		t.microPos = queue[micro].pos
		t.leafDone = sync.hook(micro)
		loss, err := t.runMicro(b, micro)
		t.leafDone = nil
		if err != nil {
			return false, errors.Join(err, releaseQueued(queue[micro+1:]))
		}
		if err := b.Release(); err != nil {
			return false, errors.Join(err, releaseQueued(queue[micro+1:]))
		}
		tree.take(t.Params, micro)
		lossSum += loss
		if slotLoss != nil {
			slotLoss[micro] = loss
		}
		tokens += b.Tokens
	}
	t.labelledInEpoch = true
	tree.finish(t.Params, micro)
	if sync != nil {
		if lossSum, err = sync.finish(slotLoss); err != nil {
			return false, err
		}
	}
	var params []optim.Param
	var gradNorm float64
	if t.dev != nil {
		// The step's one synchronisation: the norm (which the guards
		// below need before the update), with the previous update's
		// finiteness check; the losses are read after it without waiting.
		if err := t.dev.GradNorm(t.Cfg.ClipNorm); err != nil {
			return false, err
		}
		norm, paramsOK, err := t.dev.ReadNorm()
		if err != nil {
			return false, err
		}
		if !paramsOK {
			return false, t.collapsedBefore(t.State.Step)
		}
		if lossSum, err = t.readLosses(); err != nil {
			return false, err
		}
		gradNorm = norm
	} else {
		params = t.bind()
		gradNorm = optim.GradNorm(params)
	}
	loss := lossSum // weighted by each micro-batch's share
	if t.guard(loss) || math.IsNaN(gradNorm) || math.IsInf(gradNorm, 0) {
		if err := t.zeroGrad(); err != nil {
			return false, err
		}
		t.State.SkippedSteps++
		t.State.BadSteps++
		if t.State.BadSteps >= t.Cfg.MaxBadSteps {
			return false, fmt.Errorf("%w: %d consecutive steps skipped (last loss %g, gradient norm %g); %s", ErrDiverged, t.State.BadSteps, loss, gradNorm, t.lowerLR())
		}
		return epochEnd, nil
	}
	t.State.BadSteps = 0
	if gradNorm == 0 {
		t.State.DeadSteps++
		if t.State.DeadSteps >= t.Cfg.MaxDeadSteps {
			return false, fmt.Errorf("%w: gradient norm exactly 0 for %d consecutive steps (loss %.4f%s): the model no longer learns; %s",
				ErrCollapsed, t.State.DeadSteps, loss, t.lnVocab(), t.lowerLR())
		}
	} else {
		t.State.DeadSteps = 0
	}
	if t.Cfg.ClipNorm > 0 && t.dev == nil { // the device step clips itself
		if _, err := optim.ClipGradNorm(params, t.Cfg.ClipNorm); err != nil {
			return false, err
		}
	}
	mult := 1.0
	if t.Cfg.Schedule != nil {
		mult = t.Cfg.Schedule.LR(t.State.Step)
	}
	lr := t.Cfg.LR * mult
	t.Opt.SetLR(lr)
	if t.dev != nil {
		if err := t.dev.Step(lr); err != nil {
			return false, err
		}
	} else {
		if err := t.Opt.Step(params); err != nil {
			return false, err
		}
		if name, ok := nonFinite(params); !ok {
			return false, fmt.Errorf("%w: step %d left non-finite values in %s (gradient norm %g); %s", ErrCollapsed, t.State.Step+1, name, gradNorm, t.lowerLR())
		}
		t.upload(params)
	}
	if err := t.zeroGrad(); err != nil {
		return false, err
	}
	tensor.TrimCPUPool() // what this step did not reuse is not a step's size any more
	t.State.Step++
	t.State.Tokens += int64(tokens)
	t.State.LastLoss, t.State.LastLR = loss, lr
	t.State.Losses = append(t.State.Losses, loss)
	if t.State.LossEMA == 0 {
		t.State.LossEMA = loss
	} else {
		t.State.LossEMA = 0.9*t.State.LossEMA + 0.1*loss
	}
	m := Metrics{"train/loss": loss, "train/lr": lr, "train/grad_norm": gradNorm,
		"train/tokens_per_s": float64(tokens) / time.Since(began).Seconds(), "train/epoch": float64(t.State.Epoch)}
	if sync != nil {
		m["train/allreduce_exposed_s"] = sync.exposed.Seconds()
	}
	for _, c := range t.Callbacks {
		if err := c.OnStepEnd(t, m); err != nil {
			return false, err
		}
	}
	if err := t.deviceStateErr(); err != nil {
		return false, err
	}
	if t.Cfg.EvalEvery > 0 && t.Val != nil && (t.State.Step%t.Cfg.EvalEvery == 0 || t.State.Step == total) {
		if err := t.runValidation(ctx); err != nil {
			return epochEnd, err
		}
	}
	return epochEnd, nil
}

// epochConsumed reports whether the training loader has handed out every
// batch of its epoch.
func (t *Trainer) epochConsumed() bool {
	n := t.Train.Len()
	_, index := t.Train.Position()
	return n > 0 && index >= n
}

// stepDone runs the StepClosers' hook: the step, and its validation if it
// had one, are complete.
func (t *Trainer) stepDone() error {
	for _, c := range t.Callbacks {
		if sc, ok := c.(StepCloser); ok {
			if err := sc.OnStepDone(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// runValidation validates at the current step and runs the callbacks'
// OnValidationEnd. State.ValidationPending is set until they have all
// run: a checkpoint written meanwhile (an interrupt's, by OnTrainEnd)
// says that the step's validation is still to do.
func (t *Trainer) runValidation(ctx context.Context) error {
	if t.Val == nil {
		t.State.ValidationPending = false
		return nil
	}
	t.State.ValidationPending = true
	m, err := t.Validate(ctx, t.Val)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", errValidationStopped, err)
	}
	if err != nil {
		return err
	}
	if err := t.finiteValidation(m); err != nil {
		return err
	}
	for _, c := range t.Callbacks {
		if err := c.OnValidationEnd(t, m); err != nil {
			return err
		}
	}
	t.State.ValidationPending = false
	return nil
}
