package recipe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/data/augment"
	"github.com/ftune/ftune/data/chat"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/quant/nf4"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/dpo"
)

// Evaluation is the state of the model at one point: validation metrics
// and the held-out questions.
type Evaluation struct {
	Val train.Metrics
	QA  *train.QAReport
}

// Result of a run.
type Result struct {
	RunDir    string
	Adapters  map[string]string // adapter name → exported PEFT folder
	Before    Evaluation
	After     Evaluation
	Steps     int
	Losses    []float64
	Tokens    int64
	Duration  time.Duration
	Subjects  []string
	TrainRows int
	Stopped   string // why training stopped early ("" when it ran to the end)
}

// session is one run's moving parts.
type session struct {
	o        Options
	model    *nn.Model
	tp       Text
	data     *dataset
	adapters map[string]*lora.Adapter // by name ("default" when shared)
	routed   *lora.SubjectAdapterModel
	// adapterDir is the adapter folder Evaluate loaded ("" in a run, whose
	// adapters are the ones it trains).
	adapterDir string
	log        io.Writer
	run        *track.Run // set once the run folder is open; trackSink writes to it
	ranks      []string   // data-parallel workers' hosts and devices, by rank
}

// Run performs a complete fine-tuning run. The run folder records how it
// ended (summary.json): finished, interrupted (ctx cancelled) or failed.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	return run(ctx, o, nil)
}

// RunLocked is Run resuming o.ResumeDir, with locked called once the run
// folder's lock is held (no other process runs it), before anything is
// restored or written: what it writes (the resumed config) is not
// written for a resume refused because the run is in use. Its error
// ends the resume.
func RunLocked(ctx context.Context, o Options, locked func() error) (*Result, error) {
	return run(ctx, o, locked)
}

func run(ctx context.Context, o Options, locked func() error) (res *Result, err error) {
	if o.InitAdapter != "" {
		if o, err = o.adoptInitAdapter(); err != nil {
			return nil, err
		}
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &session{o: o, log: o.Log, adapters: map[string]*lora.Adapter{}}
	if s.log == nil {
		s.log = io.Discard
	}
	size, rank := o.world()
	if rank != 0 {
		s.log = workerLog(o.WorkerLog, rank)
		s.o.Log = s.log // what reading the data says, prefixed too
	}
	for _, n := range o.Notices {
		fmt.Fprintln(s.log, "note:", n)
	}
	start := time.Now()
	if err := s.o.preflight(s.log); err != nil {
		return nil, err
	}
	closeNCCL, err := s.useDeviceComm()
	if err != nil {
		return nil, err
	}
	defer closeNCCL()
	if rank != 0 {
		return runWorker(ctx, s)
	}
	if err := s.gatherRanks(); err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted while loading the model and data, before the run folder was made: nothing was saved (%w)", err)
		}
		return nil, err
	}
	if err := s.checkPreferenceTraining(); err != nil {
		return nil, err
	}
	epochsDecide := s.o.Steps == 0
	if epochsDecide {
		s.o.Steps = max(1, o.Epochs*s.stepsPerEpoch())
		if err := s.o.fitWarmup(s.log); err != nil {
			return nil, err
		}
		o = s.o
	}
	if err := s.checkValidationReach(epochsDecide); err != nil {
		return nil, err
	}
	cfg, _ := json.MarshalIndent(o, "", "  ")
	var (
		run       *track.Run
		t         *train.Trainer
		restarted bool // resumed with no checkpoint: from step 0
	)
	if o.ResumeDir != "" {
		// Resume: lock the run folder, restore the newest usable
		// checkpoint, and reopen the folder from that step.
		if t, err = s.trainer(o.ResumeDir); err != nil {
			return nil, err
		}
		// The checkpoint is read under the run folder's lock: no other
		// process writes or prunes checkpoints meanwhile.
		var ck string
		restore := func() (int, error) {
			if locked != nil {
				if err := locked(); err != nil {
					return 0, err
				}
			}
			root := filepath.Join(o.ResumeDir, "checkpoints")
			ck, err = train.ResumeLatest(root, t, func(w string) { fmt.Fprintln(s.log, "warning:", w) })
			if errors.Is(err, train.ErrNoCheckpoint) && len(train.Checkpoints(root)) == 0 && isRunStart(o.ResumeDir) {
				// Stopped before its first checkpoint: the run is
				// deterministic, so it starts again in its folder.
				fmt.Fprintf(s.log, "note: %s holds no checkpoint (the run stopped before its first): starting it again from step 0\n", o.ResumeDir)
				restarted = true
				return 0, nil
			}
			if err != nil {
				return 0, fmt.Errorf("recipe: resume %s: %w", o.ResumeDir, err)
			}
			return t.State.Step, nil
		}
		// A run that finished its steps has nothing to resume: say so, and
		// leave the folder as it is (reopening it cuts its metrics back to
		// the checkpoint's step, and the run was evaluated, exported and
		// reported again). Read without the lock: nothing is written. One
		// process only: workers would wait for its collectives.
		if prev, err := track.Summarize(o.ResumeDir); err == nil && size == 1 && prev.Status == track.StatusFinished && prev.Steps >= t.TotalSteps() {
			return s.alreadyFinished(o.ResumeDir, prev.Steps), nil
		}
		if run, err = track.ResumeRunFrom(o.ResumeDir, restore, track.WithTensorBoard(o.TensorBoard), s.worldEnv(), gpuEnv(o.device, o.Optimizer, worldSize(o))); err != nil {
			return nil, err
		}
		defer func() { err = endRunRecover(ctx, run, t, err, recover()) }()
		if !restarted {
			fmt.Fprintf(s.log, "resumed from %s at step %d\n", ck, t.State.Step)
			if err = s.recordRestored(run, ck, t.State.Step); err != nil {
				return nil, err
			}
		}
		if err = s.checkResumedInputs(run); err != nil {
			return nil, err
		}
	} else {
		if run, err = track.NewRun(o.OutDir, o.RunName, o.Config, track.WithTensorBoard(o.TensorBoard), s.worldEnv(), gpuEnv(o.device, o.Optimizer, worldSize(o))); err != nil {
			return nil, err
		}
		defer func() { err = endRunRecover(ctx, run, t, err, recover()) }()
		if t, err = s.trainer(run.Dir); err != nil {
			return nil, err
		}
		if err := writeJSON(filepath.Join(run.Dir, "options.json"), cfg); err != nil {
			return nil, err
		}
		if err := s.setInputs(run); err != nil {
			return nil, err
		}
	}
	// Before the first collective that depends on the data (the
	// validation before training): workers that differ stop here, saying
	// how (runWorker checks at the same point).
	if err := t.CheckInSync(); err != nil {
		return nil, err
	}
	s.run = run
	res = &Result{RunDir: run.Dir, Adapters: map[string]string{}, Subjects: s.data.subjects, TrainRows: s.data.trainLen()}
	fmt.Fprintf(s.log, "run folder: %s\n", run.Dir)
	fmt.Fprintf(s.log, "model: %s (%d layers, hidden %d, vocab %d)%s\n", o.ModelDir, s.model.Config.NumLayers, s.model.Config.HiddenSize, s.model.Config.VocabSize, map[bool]string{true: ", NF4 base", false: ""}[o.Load4Bit])
	for _, name := range s.data.subjects {
		st := s.data.stats[name]
		from := ""
		if s.data.cached[name] {
			from = "; from the token cache"
		}
		fmt.Fprintf(s.log, "subject %-12s %4d examples, %6d tokens (%d truncated, %d dropped%s)\n", name, st.Kept, st.Tokens, st.Truncated, st.Dropped+st.DroppedNoLabel, from)
	}

	o.printDiskPlan(s.log, t, run.Dir)

	evals := s.data.evaluable(s.log)
	s.sayValidationCap(t)
	if evals && (o.ResumeDir == "" || restarted && !hasBefore(run.Dir)) {
		fmt.Fprintf(s.log, "\n== before training\n")
		if res.Before, err = s.evaluate(ctx, t); err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(s.log, "\ninterrupted during the evaluation before training: nothing was trained, no checkpoint was saved\n")
				res.Stopped, res.Duration = "interrupted", time.Since(start)
				return res, nil
			}
			return nil, err
		}
		s.printEval(s.log, res.Before)
		logEval(run, 0, "before", res.Before)
	} else if evals {
		// The weights are no longer the base's: "before" was measured when
		// the run started and stays in its metrics.
		fmt.Fprintf(s.log, "\n== before training: measured when the run started (%s)\n", filepath.Join(run.Dir, track.MetricsFile))
	}

	if o.preference() {
		s.sayPreferenceTraining(t)
	} else {
		fmt.Fprintf(s.log, "\n== training: %d steps of %d rows × %d tokens, %s r=%d on %d modules per adapter, %d adapter(s)\n",
			t.TotalSteps(), o.BatchSize*o.GradAccum, o.SeqLen, o.loraKind(), o.R, len(s.anyAdapter().Layers), len(s.adapters))
	}
	fmt.Fprintf(s.log, "   %s\n", o.scheduleSummary())
	if o.InitAdapter != "" {
		fmt.Fprintf(s.log, "   adapter: continued from %s (its shape; dropout %g and its streams from this run's settings)\n", o.InitAdapter, o.Dropout)
	}
	if per := t.Train.Len(); o.GradAccum > per {
		fmt.Fprintf(s.log, "   note: training.grad_accum %d is more than the %d micro-batches of an epoch: each step is one epoch\n", o.GradAccum, per)
	}
	if len(o.ModulesToSave) > 0 {
		fmt.Fprintf(s.log, "   trained in full beside it (modules_to_save): %s\n", strings.Join(slices.Sorted(maps.Keys(s.anyAdapter().Copies)), ", "))
	}
	if size > 1 {
		fmt.Fprintf(s.log, "   on %d data-parallel workers (%s); %s\n", size, o.engine(), workerShare(o.GradAccum, size))
	}
	if err := t.Fit(ctx); err != nil {
		return nil, err
	}
	res.Steps, res.Losses, res.Tokens, res.Stopped = t.State.Step, t.State.Losses, t.State.Tokens, t.State.StopReason
	if interrupted(ctx, t) {
		// Interrupted (Ctrl-C, SIGTERM): the step finished and the
		// checkpointer saved it; skip the final evaluation and say how to
		// continue. A stop after the last step left StopReason empty,
		// and the command said "finished" after "interrupted".
		res.Stopped, res.Duration = "interrupted", time.Since(start)
		s.printInterrupted(t, run.Dir)
		return res, nil
	}

	// The adapters are saved before the evaluation after training: an
	// evaluation that fails or is interrupted does not lose them.
	if err := s.saveAdapters(res); err != nil {
		return nil, err
	}
	if evals {
		fmt.Fprintf(s.log, "\n== after training (%d steps)\n", t.State.Step)
		if res.After, err = s.evaluate(ctx, t); err != nil {
			saved := strings.Join(slices.Sorted(maps.Values(res.Adapters)), ", ")
			if ctx.Err() != nil {
				fmt.Fprintf(s.log, "\ninterrupted during the evaluation after training; the trained adapter is saved (%s), and resuming measures it: %s\n", saved, s.o.resumeHint(run.Dir))
				res.Stopped, res.Duration = "interrupted", time.Since(start)
				return res, nil
			}
			return nil, fmt.Errorf("%w (the trained adapter is saved: %s)", err, saved)
		}
		s.printEval(s.log, res.After)
		logEval(run, t.State.Step, "after", res.After)
		s.printSamples(res.Before, res.After)
	}
	for _, r := range samplesToLog(res.After.QA, samplesLogged) {
		if err := run.LogText(t.State.Step, "samples/"+r.Subject, fmt.Sprintf("Q: %s\nA (model): %s\nA (reference): %s", r.Question, r.Generated, r.Answer)); err != nil {
			return nil, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// stepsPerEpoch is how many optimizer steps one pass over the training
// data takes: its micro-batches, grad_accum to a step (the last one short).
func (s *session) stepsPerEpoch() int {
	batches := (s.data.trainLen() + s.o.BatchSize - 1) / s.o.BatchSize
	return (batches + s.o.GradAccum - 1) / s.o.GradAccum
}

// checkValidationReach refuses early stopping, and a top_k other than the
// default, when no validation runs during training before its last step:
// early stopping could never stop the run and top_k would rank one
// checkpoint at most, silently. config.Validate refuses this where the
// config alone decides it (eval.every ≥ max_steps); with eval.every 0
// (validation at each epoch's end) or max_epochs deciding the run's
// length it depends on the data, known here. Without validation data
// there is nothing to reach (the evaluation notes say so). When early
// stopping is reached by too few validations to stop the run, a note says
// so, as FromConfig's does for max_steps with eval.every.
func (s *session) checkValidationReach(epochsDecide bool) error {
	o := s.o
	es := o.earlyStopping()
	topK := o.Monitor != "" && o.TopK > 0 && o.TopK != Defaults().TopK
	if es == nil && !topK || len(s.data.val) == 0 && len(s.data.valPairs) == 0 {
		return nil
	}
	perEpoch := max(1, s.stepsPerEpoch())
	length := fmt.Sprintf("max_steps %d", o.Steps)
	if epochsDecide {
		length = fmt.Sprintf("max_epochs %d (%d steps)", o.Epochs, o.Steps)
	}
	epoch := fmt.Sprintf("an epoch of this data is %d steps (%d training %s, batch_size %d, grad_accum %d)",
		perEpoch, s.data.trainLen(), o.trainingItems(), o.BatchSize, o.GradAccum)
	// Validations before the last step: at steps every, 2·every, … or at
	// the end of epochs 1, 2, … (the last step's does not count).
	var n int
	var why, fix string
	if o.EvalEvery == 0 {
		n = (o.Steps - 1) / perEpoch
		why = fmt.Sprintf("with training.eval.every 0 validation runs at the end of each epoch; %s and the run is %s", epoch, length)
		switch {
		case o.Steps <= 1:
			fix = "a 1-step run validates only after its step: raise max_steps"
		case o.Steps == 2:
			fix = "set training.eval.every 1 to validate after every step"
		default:
			fix = fmt.Sprintf("set training.eval.every N (between 1 and %d) to validate every N steps", o.Steps-1)
		}
		if epochsDecide {
			fix += ", or raise max_epochs"
		} else if o.Steps > 1 {
			fix += fmt.Sprintf(", or raise max_steps above %d", perEpoch)
		}
	} else {
		if !epochsDecide {
			return nil // config.Validate decided it from max_steps and eval.every
		}
		n = (o.Steps - 1) / o.EvalEvery
		why = fmt.Sprintf("with training.eval.every %d the run is %s (%s)", o.EvalEvery, length, epoch)
		fix = fmt.Sprintf("lower training.eval.every below %d, or raise max_epochs", o.Steps)
	}
	if n == 0 {
		var errs []string
		if es != nil {
			errs = append(errs, fmt.Sprintf("training.early_stopping.enabled: early stopping acts at validation, and %s: no validation runs before the last step, so it could never stop the run", why))
		}
		if topK {
			errs = append(errs, fmt.Sprintf("training.checkpointing.top_k: top_k %d keeps the checkpoints %s ranks best, and %s: no validation runs before the last step, so at most one checkpoint is ranked", o.TopK, o.Monitor, why))
		}
		return fmt.Errorf("recipe: %s; %s", strings.Join(errs, "; "), fix)
	}
	if es != nil && n < es.Patience+1 {
		fmt.Fprintf(s.log, "note: training.early_stopping: patience %d needs %d validations before the last step to stop the run, and %s: %d run before it, so early stopping cannot stop this run (validate more often with training.eval.every, or lower patience)\n",
			es.Patience, es.Patience+1, why, n)
	}
	return nil
}

// saveAdapters writes each trained adapter into the run folder (adapter/,
// or adapters/<name>/ for several) and records it as a version.
func (s *session) saveAdapters(res *Result) error {
	// The version names the step trained to, which the last logged
	// record (LogEvery) may be short of.
	s.run.SetStep(res.Steps)
	if s.o.Mode == Shared && s.data != nil {
		var own []string
		for _, name := range slices.Sorted(maps.Keys(s.data.templates)) {
			if s.data.templates[name] != s.tp.tmpl.Source() {
				own = append(own, name)
			}
		}
		if len(own) > 0 {
			fmt.Fprintf(s.log, "note: subject(s) %s were rendered with their own chat templates (subject.yaml); the one adapter carries the run's, %s, in its chat_template.jinja (training.adapters: per-subject gives each subject its adapter and template)\n", strings.Join(own, ", "), s.tp.tmpl.Name())
		}
	}
	for name, a := range s.adapters {
		dir := filepath.Join(s.run.Dir, "adapter")
		if len(s.adapters) > 1 {
			dir = filepath.Join(s.run.Dir, "adapters", name)
		}
		a.Config.BaseModelNameOrPath = s.o.ModelDir
		if err := s.saveAdapter(a, name, dir); err != nil {
			return err
		}
		res.Adapters[name] = dir
		if err := s.run.AddVersion("export/peft", dir, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) anyAdapter() *lora.Adapter {
	for _, name := range slices.Sorted(maps.Keys(s.adapters)) {
		return s.adapters[name]
	}
	return nil
}

func (s *session) load(ctx context.Context) error {
	if err := s.loadBase(ctx); err != nil {
		return err
	}
	return s.attach()
}

// loadBase reads the model, its tokenizer and template, and the data.
func (s *session) loadBase(ctx context.Context) error {
	o := s.o
	be, err := s.o.openDevice(s.log)
	if err != nil {
		return err
	}
	// A GPU's bf16 path computes in bf16 (Device.ModelDType); precision
	// f32 is the float32 parity path.
	lo := nn.LoadOptions{KeepBF16: true, Backend: be, DType: modelDType(be, o.Precision)}
	if o.Load4Bit {
		lo.Quantize = nf4.Quantizer(be)
	}
	m, err := nn.LoadContext(ctx, o.ModelDir, lo)
	if err != nil {
		return err
	}
	s.model = m
	fallback := m.Config.PadFallback()
	if s.tp, err = TextFor(o, fallback); err != nil {
		return err
	}
	if s.tp.Fallback != "" {
		fmt.Fprintln(s.log, s.tp.Fallback)
	}
	if err := s.tp.tok.CheckVocab(m.Config.VocabSize); err != nil {
		return err
	}
	return s.loadDataInTurn(func() (err error) {
		s.data, err = loadData(ctx, o, s.tp, m.Config.MaxPositions)
		return err
	})
}

// attach creates the adapters: one shared, or one per subject routed by row.
func (s *session) attach() error {
	o := s.o
	cfg := lora.NewConfig(o.R, o.Alpha, o.Targets...)
	cfg.LoraDropout = o.Dropout
	cfg.UseRSLoRA = o.RSLoRA
	cfg.UseDoRA = o.DoRA
	cfg.ModulesToSave = o.ModulesToSave
	if o.Mode == PerSubject {
		if len(o.ModulesToSave) > 0 {
			return fmt.Errorf("recipe: lora modules_to_save %v with per-subject adapters: the copies replace whole modules (embeddings, LM head), which rows routed to different subjects cannot share; use shared adapters", o.ModulesToSave)
		}
		s.routed = lora.NewSubjectAdapterModel(s.model)
		for i, name := range s.data.subjects {
			a, err := lora.New(s.model, cfg, name, o.Seed+uint64(i))
			if err != nil {
				return err
			}
			if err := s.routed.Add(a); err != nil {
				return err
			}
			s.adapters[name] = a
		}
		return nil
	}
	var a *lora.Adapter
	var err error
	if o.InitAdapter != "" {
		a, err = s.initAdapter("default")
	} else {
		a, err = lora.New(s.model, cfg, "default", o.Seed)
	}
	if err != nil {
		return err
	}
	s.adapters["default"] = a
	return a.Attach(s.model)
}

// sayValidationCap says when training.eval.max_batches leaves out some
// of the held-out batches (train.ValBatches picks which).
func (s *session) sayValidationCap(t *train.Trainer) {
	if max := s.o.EvalMaxBatches; t.Val != nil && max > 0 && t.Val.Len() > max {
		fmt.Fprintf(s.log, "validation: %d of the held-out set's %d batches, spread over it (training.eval.max_batches %d; 0 for all)\n", max, t.Val.Len(), max)
	}
}

// adoptInitAdapter sets the adapter's shape (R, Alpha, Targets, RSLoRA,
// DoRA, ModulesToSave) from InitAdapter's adapter_config.json, which the
// run continues: the plan, the refusals and the log then speak of the
// adapter trained.
func (o Options) adoptInitAdapter() (Options, error) {
	if o.Mode == PerSubject {
		return o, fmt.Errorf("recipe: training.lora.init_from %s with per-subject adapters: it continues one adapter; use shared adapters", o.InitAdapter)
	}
	if err := track.NotARunFolder(o.InitAdapter); err != nil {
		return o, fmt.Errorf("recipe: training.lora.init_from: %w", err)
	}
	c, err := lora.ReadConfig(filepath.Join(o.InitAdapter, lora.ConfigFile))
	if err != nil {
		return o, fmt.Errorf("recipe: training.lora.init_from: %w", err)
	}
	o.R, o.Alpha, o.RSLoRA, o.DoRA, o.ModulesToSave = c.R, c.LoraAlpha, c.UseRSLoRA, c.UseDoRA, c.ModulesToSave
	if c.TargetModules.IsRegex {
		o.Targets = []string{c.TargetModules.Regex} // "all-linear", or a pattern lora.Load applies
	} else {
		o.Targets = c.TargetModules.Names
	}
	return o, nil
}

// initAdapter loads Options.InitAdapter as the adapter called name: the
// run's to train (dropout and its streams from the run's settings, the
// run's base recorded), or the frozen reference of a DPO run.
func (s *session) initAdapter(name string) (*lora.Adapter, error) {
	if err := track.CheckAdapter(s.o.InitAdapter); err != nil {
		return nil, fmt.Errorf("recipe: training.lora.init_from: %w", err)
	}
	a, err := lora.Load(s.model, s.o.InitAdapter, name)
	if err != nil {
		return nil, fmt.Errorf("recipe: training.lora.init_from: %w", err)
	}
	a.Reseed(s.o.Dropout, s.o.Seed)
	a.Base = lora.BaseOf(s.model)
	return a, nil
}

// params names every trainable tensor (prefixed by adapter when several).
func (s *session) params() map[string]*autograd.Var {
	out := map[string]*autograd.Var{}
	for name, a := range s.adapters {
		for k, v := range a.Params() {
			if len(s.adapters) > 1 {
				k = name + "/" + k
			}
			out[k] = v
		}
	}
	return out
}

// paramDims is each trainable parameter's number of dimensions, by name
// (LoRA+ groups by it, as PEFT does).
func paramDims(params map[string]*autograd.Var) map[string]int {
	out := make(map[string]int, len(params))
	for name, v := range params {
		out[name] = len(v.Value.Shape())
	}
	return out
}

type rngs map[string]*lora.Adapter

func (r rngs) SaveRNG() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, a := range r {
		m, err := a.SaveRNG()
		if err != nil {
			return nil, err
		}
		maps.Copy(out, m)
	}
	return out, nil
}

func (r rngs) LoadRNG(m map[string][]byte) error {
	for _, a := range r {
		if err := a.LoadRNG(m); err != nil {
			return err
		}
	}
	return nil
}

// trackSink adapts the session's track.Run to the trainer's Sink.
type trackSink struct{ s *session }

func (t trackSink) Log(step int, m train.Metrics) error { return t.s.run.Log(step, m) }

func (s *session) trainer(runDir string) (t *train.Trainer, err error) {
	o := s.o
	be := s.model.Backend
	var tl, vl train.Loader
	var obj *dpo.Objective
	var items func(train.Batch) int
	if o.preference() {
		if obj, err = s.preferenceObjective(); err != nil {
			return nil, err
		}
		if tl, vl, items, err = s.preferenceLoaders(o.BatchSize); err != nil {
			return nil, err
		}
	} else {
		rl, err := train.NewRowLoader(s.data.train, s.data.subjects, o.BatchSize, true, o.DataSeed, s.tp.pad, be)
		if err != nil {
			return nil, err
		}
		rl.Augment = s.data.augment
		tl = rl
		if len(s.data.val) > 0 {
			if vl, err = train.NewRowLoader(s.data.val, s.data.subjects, o.BatchSize, false, 0, s.tp.pad, be); err != nil {
				return nil, err
			}
		}
	}
	params := s.params()
	lrScale := optim.LoRAPlusScale(o.LoRAPlusLRRatio, paramDims(params))
	var opt train.Optimizer
	switch o.Optimizer {
	case "", "adamw":
		ac := optim.AdamWConfig{LR: o.LR, Beta1: o.Betas[0], Beta2: o.Betas[1], Eps: o.Eps, WeightDecay: o.WeightDecay, NoDecay: optim.DefaultNoDecay, LRScale: lrScale}
		if ac.Beta1 == 0 && ac.Beta2 == 0 {
			ac.Beta1, ac.Beta2 = 0.9, 0.999
		}
		if ac.Eps == 0 {
			ac.Eps = 1e-8
		}
		if opt, err = optim.NewAdamW(ac); err != nil {
			return nil, err
		}
	case "sgd":
		if opt, err = optim.NewSGD(optim.SGDConfig{LR: o.LR, Momentum: o.Momentum, WeightDecay: o.WeightDecay, NoDecay: optim.DefaultNoDecay, LRScale: lrScale}); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("recipe: optimizer %q (adamw or sgd)", o.Optimizer)
	}
	sched, err := o.schedule()
	if err != nil {
		return nil, err
	}
	if err := s.checkDropoutSharding(); err != nil {
		return nil, err
	}
	if _, cpu := be.(*tensor.CPUBackend); cpu && o.NoCPUPool {
		fmt.Fprintln(s.log, "memory: CPU pool off (FTUNE_CPU_POOL=0): every step's tensors are left to Go's collector instead of recycled")
	}
	var sink train.Sink = train.LineSink{W: s.log, Loss: o.lossName()}
	if o.Progress {
		sink = newProgress(s.log, o.Steps, o.lossName())
	}
	t = &train.Trainer{Comm: o.Comm,
		Model: s.model, Params: params, Opt: opt, Train: tl, Val: vl, RNG: rngs(s.adapters),
		Cfg: train.Config{MaxSteps: o.Steps, GradAccum: o.GradAccum, ClipNorm: o.ClipNorm, LR: o.LR, Schedule: sched,
			EvalEvery: o.EvalEvery, LogEvery: max(1, o.LogEvery), MaxTime: o.MaxTime, SpikeFactor: o.SpikeFactor,
			Checkpointing: o.GradCheckpointing, OffloadCheckpoints: o.OffloadCheckpoints, MLPChunkTokens: o.MLPChunkTokens, ValMaxBatches: o.EvalMaxBatches, HeapOnly: o.NoCPUPool},
		Callbacks: []train.Callback{
			&train.MetricsLogger{Sinks: []train.Sink{sink, trackSink{s}}, ParamCount: paramCount(s.model.Params()), PeakFLOPS: peakFLOPS(be, o.Precision), FLOPsPerParam: 4},
			newRecordedCheckpointer(s, &train.Checkpointer{Dir: filepath.Join(runDir, "checkpoints"), Every: o.CheckpointEvery, KeepLast: o.KeepLast,
				Monitor: o.Monitor, Mode: o.MonitorMode, TopK: o.TopK, Extra: s.saveAdaptersInto}),
		},
	}
	t.Callbacks = append(append(deviceMetrics(be), optimizerLog(be, s.log)...), t.Callbacks...)
	if runDir == "" { // a worker other than rank 0: it writes nothing
		t.Callbacks = nil
	}
	if size, _ := o.world(); size > 1 && o.Dropout > 0 {
		t.SkipRows = s.skipRows
	}
	if t.DP, err = dataParallelEnv(); err != nil {
		return nil, err
	}
	if size, _ := o.world(); size > 1 {
		if t.DP.Agree, err = s.agreements(); err != nil {
			return nil, err
		}
	}
	if o.NEFTuneAlpha > 0 {
		s.model.EmbeddingHook = neftuneHook(augment.NEFTune{Alpha: o.NEFTuneAlpha, Seed: o.Seed}, t)
	}
	if es := o.earlyStopping(); es != nil {
		t.Callbacks = append(t.Callbacks, es)
	}
	if s.routed != nil {
		t.Forward = func(tp *autograd.Tape, b train.Batch, fo nn.ForwardOptions) (nn.Output, error) {
			return s.routed.ForwardRouted(tp, b.Batch, b.Subjects, fo)
		}
	}
	if obj != nil {
		obj.Comm = o.Comm // its validation is shared as the trainer's is
		t.Forward, t.Validation, t.LossItems = obj.Forward, obj.Validation(o.EvalMaxBatches), items
		// Before the metrics logger: it adds the step's rewards to the
		// step's metrics. On every worker: with several, it sums them
		// over all of them (a collective), and rank 0 logs.
		t.Callbacks = append([]train.Callback{obj}, t.Callbacks...)
	}
	return t, nil
}

// alreadyFinished is the result of resuming a run that finished its
// steps: nothing trained, the run's adapters as they are.
func (s *session) alreadyFinished(dir string, steps int) *Result {
	fmt.Fprintf(s.log, "%s already finished its %d steps: nothing to resume (raise --max-steps to train on)\n", dir, steps)
	res := &Result{RunDir: dir, Adapters: map[string]string{}, Subjects: s.data.subjects, Steps: steps, Stopped: "already finished"}
	for name := range s.adapters {
		p := filepath.Join(dir, "adapter")
		if len(s.adapters) > 1 {
			p = filepath.Join(dir, "adapters", name)
		}
		if _, err := os.Stat(p); err == nil {
			res.Adapters[name] = p
		}
	}
	return res
}

// recordedCheckpointer is the trainer's Checkpointer that also records in
// the run folder each checkpoint it writes, as a "checkpoint" version of
// manifest.json (the README promises every checkpoint there), and each
// completed step (SetStep), so that the version and summary.json name the
// step trained to even where no record was logged at it.
type recordedCheckpointer struct {
	*train.Checkpointer
	s     *session
	saved bool // the checkpoint's Extra ran: a save is under way
}

// newRecordedCheckpointer wraps c, whose Extra it chains: the Checkpointer
// says nothing of whether a hook call saved, and its Extra runs only for a
// checkpoint being written.
func newRecordedCheckpointer(s *session, c *train.Checkpointer) *recordedCheckpointer {
	rc := &recordedCheckpointer{Checkpointer: c, s: s}
	extra := c.Extra
	c.Extra = func(dir string) error {
		if extra != nil {
			if err := extra(dir); err != nil {
				return err
			}
		}
		rc.saved = true
		return nil
	}
	return rc
}

func (c *recordedCheckpointer) OnStepEnd(t *train.Trainer, m train.Metrics) error {
	c.s.run.SetStep(t.State.Step)
	return c.record(t, c.Checkpointer.OnStepEnd(t, m))
}

func (c *recordedCheckpointer) OnValidationEnd(t *train.Trainer, m train.Metrics) error {
	return c.record(t, c.Checkpointer.OnValidationEnd(t, m))
}

func (c *recordedCheckpointer) OnStepDone(t *train.Trainer) error {
	return c.record(t, c.Checkpointer.OnStepDone(t))
}

func (c *recordedCheckpointer) OnTrainEnd(t *train.Trainer) error {
	return c.record(t, c.Checkpointer.OnTrainEnd(t))
}

// record adds the checkpoint the hook just wrote, if it wrote one (err is
// the hook's: a failed save records nothing), to manifest.json: the
// adapter files it holds and its checksums file, which pins every other
// file (the parameters and optimizer moments, gigabytes to hash again).
func (c *recordedCheckpointer) record(t *train.Trainer, err error) error {
	saved := c.saved
	c.saved = false
	if err != nil || !saved {
		return err
	}
	dir := filepath.Join(c.Dir, train.StepDir(t.State.Step))
	return c.s.run.AddVersion("checkpoint", dir, checkpointFiles(dir), nil)
}

// checkpointFiles are the files of a checkpoint that its manifest.json
// version hashes.
func checkpointFiles(dir string) []string {
	var files []string
	for _, f := range []string{"adapter", "adapters", "checksums.sha256"} { // checksums.sha256: train's checksum file
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			files = append(files, filepath.Join(dir, f))
		}
	}
	return files
}

// recordRestored adds the checkpoint ck a run resumed from (at step) to
// manifest.json when it is missing there: a process killed between the
// checkpoint's rename and the manifest's write left it out.
func (s *session) recordRestored(run *track.Run, ck string, step int) error {
	m, err := track.ReadManifest(filepath.Join(run.Dir, track.ManifestFile))
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(run.Dir, ck)
	for _, v := range m.Versions {
		if v.Kind == "checkpoint" && v.Step == step && (v.Path == rel || v.Path == ck) && v.Removed.IsZero() {
			return nil
		}
	}
	run.SetStep(step)
	return run.AddVersion("checkpoint", ck, checkpointFiles(ck), nil)
}

// isRunStart reports whether dir holds what a run writes when it starts
// (options.json, config.yaml), from which it can start again.
func isRunStart(dir string) bool {
	for _, f := range []string{"options.json", track.ConfigFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// hasBefore reports whether the run's metrics hold the evaluation before
// training.
func hasBefore(dir string) bool {
	recs, _ := track.ReadMetrics(filepath.Join(dir, track.MetricsFile))
	for _, r := range recs {
		for k := range r.Metrics {
			if strings.HasPrefix(k, track.EvalBeforePrefix) {
				return true
			}
		}
	}
	return false
}

// saveAdaptersInto writes the PEFT adapters into a checkpoint folder, so
// every checkpoint is also a usable export.
func (s *session) saveAdaptersInto(dir string) error {
	for name, a := range s.adapters {
		sub := filepath.Join(dir, "adapter")
		if len(s.adapters) > 1 {
			sub = filepath.Join(dir, "adapters", name)
		}
		if err := s.saveAdapter(a, name, sub); err != nil {
			return err
		}
	}
	return nil
}

// saveAdapter writes adapter a (named name) into dir with the chat
// template its data was rendered with as chat_template.jinja, which
// ftune.Load and the exports take over the base's: an adapter trained
// through data.template (or a subject.yaml's, or the built-in a base
// without a template got) is prompted as it was trained.
func (s *session) saveAdapter(a *lora.Adapter, name, dir string) error {
	if err := a.Save(dir); err != nil {
		return err
	}
	src := s.tp.tmpl.Source()
	if s.data != nil && s.o.Mode == PerSubject {
		if t, ok := s.data.templates[name]; ok {
			src = t
		}
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, chat.TemplateFile), []byte(src), 0o644)
}

// neftuneHook adds NEFTune noise to the embeddings of training forwards
// (tp.Training()). The noise is drawn from the loader position, so a resumed
// run draws the same values; the gradient passes through unchanged.
func neftuneHook(n augment.NEFTune, t *train.Trainer) func(*autograd.Tape, *autograd.Var) *autograd.Var {
	return func(tp *autograd.Tape, h *autograd.Var) *autograd.Var {
		if !tp.Training() {
			return h
		}
		shape := h.Value.Shape()
		noise := make([]float32, h.Value.Numel())
		// A data-parallel worker draws the whole micro-batch's noise
		// and keeps its rows', as one process adds to them.
		row0, rows := t.MicroShard()
		if rows > 0 {
			noise = make([]float32, h.Value.Numel()/shape[0]*rows)
		}
		epoch, index := t.MicroPosition()
		if err := n.Apply(noise, shape[len(shape)-2], shape[len(shape)-1], uint64(epoch)<<32|uint64(index), true); err != nil {
			panic(&tensor.Error{Err: err})
		}
		if rows > 0 {
			per := h.Value.Numel() / shape[0]
			noise = noise[row0*per : (row0+shape[0])*per]
		}
		return tp.Add(h, autograd.Const(tensor.FromHost(h.Value.Backend(), tensor.F32, noise, shape...).To(h.Value.DType())))
	}
}
