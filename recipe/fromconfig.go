package recipe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/train/dpo"
)

// FromConfig maps a validated run configuration onto the options of a run:
// the one place where the run file's schema meets the recipe, used by the
// CLI and by programs that embed ftune. What the engine does not implement
// is refused by cfg.Validate (with the line it came from), not here.
func FromConfig(cfg *config.RunConfig) (Options, error) {
	o := Defaults()
	// A copy: the notes below are this run's, not cfg's.
	o.Notices = append([]string(nil), cfg.Notices()...)
	o.NoCPUPool = os.Getenv("FTUNE_CPU_POOL") == "0"
	var err error
	if o.ModelDir, err = ResolveModel(cfg.Model.Path); err != nil {
		return o, err
	}
	o.DType = cfg.Model.DType
	d := cfg.Data
	if d.Root == "" && len(d.Files) == 0 {
		if o.DataRoot, err = assets.Subjects(); err != nil {
			return o, err
		}
	} else {
		o.DataRoot = d.Root
	}
	o.DataFiles, o.Format, o.Shape, o.TextUnit, o.LongText = d.Files, d.Format, d.Shape, d.TextUnit, d.LongText
	if o.Columns = d.Columns; len(d.Columns) > 0 {
		if err := checkColumns(cfg); err != nil {
			return o, err
		}
	}
	o.ValSplit, o.DataSeed, o.Mixing, o.MixWeights = d.ValSplit, d.Seed, d.Mixing, d.Weights
	o.TrainOnInputs, o.MaskHistory, o.AllowLongerThanModel = d.TrainOnInputs, d.MaskHistory, d.AllowLonger
	o.Dedup, o.Rephrase, o.PromptDropout = d.Augment.Dedup, d.Augment.Rephrase, d.Augment.PromptDropout
	o.SkipBad, o.TokenCache = d.SkipBad, d.TokenCache
	o.Template, o.SeqLen, o.Pack, o.Subjects = d.Template, d.MaxLength, d.Packing, d.Subjects
	if d.Thinking != "auto" {
		on := d.Thinking == "true"
		o.Thinking = &on
	}
	t := cfg.Training
	o.Mode = Shared
	if t.Adapters == "per-subject" {
		o.Mode = PerSubject
	}
	o.Objective, o.DPOBeta = t.Objective, t.DPO.Beta
	o.DPOLossTypes, o.DPOLossWeights, o.DPOLabelSmoothing = t.DPO.LossType, t.DPO.LossWeights, t.DPO.LabelSmoothing
	if slices.Contains(t.DPO.LossType, dpo.LossSimPO) {
		o.DPOSimPOGamma = t.DPO.SimPOGamma // the config's default is TRL's 0.5; dpo.Spec refuses it elsewhere
	}
	o.KTOBeta, o.KTODesirableWeight, o.KTOUndesirableWeight = t.KTO.Beta, t.KTO.DesirableWeight, t.KTO.UndesirableWeight
	if t.KTO.LossType != dpo.KTOLossKTO {
		o.KTOLossType = t.KTO.LossType // the config's default is kto, the options' ""
	}
	o.R, o.Alpha, o.Dropout, o.Targets, o.RSLoRA = t.LoRA.R, t.LoRA.Alpha, t.LoRA.Dropout, t.LoRA.Targets, t.LoRA.RSLoRA
	o.DoRA, o.ModulesToSave, o.InitAdapter = t.LoRA.DoRA, t.LoRA.ModulesToSave, t.LoRA.InitFrom
	o.LoRAPlusLRRatio = t.LoRA.LoRAPlusLRRatio
	o.Load4Bit = cfg.Model.LoadIn4Bit
	op := t.Optimizer
	o.Optimizer, o.LR, o.Eps, o.WeightDecay, o.Momentum = op.Name, op.LR, op.Eps, op.WeightDecay, op.Momentum
	if len(op.Betas) == 2 {
		o.Betas = [2]float64{op.Betas[0], op.Betas[1]}
	}
	o.BatchSize, o.GradAccum, o.Steps, o.Epochs = t.BatchSize, t.GradAccum, t.MaxSteps, t.MaxEpochs
	// The default warmup is scaled to a short run, saying so; any other
	// warmup longer than the run was refused by Validate (config.Warmup).
	// A warmup_ratio decides by itself, once the run knows its steps.
	var note string
	sc := t.Schedule
	o.Schedule, o.WarmupRatio = sc.Name, sc.WarmupRatio
	if o.WarmupSteps, note = cfg.Warmup(); note != "" {
		o.Notices = append(o.Notices, note)
	}
	o.WarmupIsDefault = !cfg.Chose("training.schedule.warmup_steps")
	o.MinLRRate, o.NumCycles, o.Power, o.LREnd = sc.MinLRRate, sc.NumCycles, sc.Power, sc.LREnd
	o.DecayRatio, o.DecayType = sc.DecayRatio, sc.DecayType
	o.MaxTime, o.ClipNorm, o.GradCheckpointing = time.Duration(t.MaxTime), t.ClipNorm, t.GradientCheckpointing
	o.OffloadCheckpoints = t.OffloadCheckpoints
	o.MLPChunkTokens = t.MLPChunkTokens
	o.SpikeFactor, o.LogEvery, o.NEFTuneAlpha = t.SpikeFactor, t.LogEvery, t.NEFTuneAlpha
	o.EvalEvery, o.EvalMaxBatches = t.Eval.Every, t.Eval.MaxBatches
	if o.Steps > 0 && o.EvalEvery > o.Steps {
		o.EvalEvery = o.Steps
	}
	o.EvalQuestions, o.MaxNewTokens, o.Samples = t.Eval.Generation.Questions, t.Eval.Generation.MaxNewTokens, t.Eval.Generation.Samples
	// Sample answers are shown from the questions asked: no questions, no
	// samples, and never more samples than questions.
	o.Samples = min(o.Samples, max(o.EvalQuestions, 0))
	c := t.Checkpointing
	o.CheckpointEvery, o.KeepLast, o.Monitor, o.MonitorMode, o.TopK = c.Every, c.KeepLast, c.Monitor, c.Mode, c.TopK
	// Early stopping watches its own metric (the checkpoints keep theirs);
	// a patience turns it on.
	es := t.EarlyStopping
	o.EarlyStopMonitor, o.EarlyStopMode, o.EarlyStopMinDelta = es.Monitor, es.Mode, es.MinDelta
	if es.Enabled {
		o.EarlyStopPatience = es.Patience
		if note := earlyStopReach(t); note != "" {
			o.Notices = append(o.Notices, note)
		}
	}
	o.OutDir, o.RunName, o.TensorBoard = t.Tracking.OutputDir, t.Tracking.RunName, t.Tracking.TensorBoard
	o.Seed = t.Seed
	o.Device, o.Precision, o.IgnoreMemoryEstimate = t.Device, t.Precision, t.IgnoreMemoryEstimate
	o.MaxDeviceMemory = int64(t.MaxDeviceMemory * (1 << 30))
	o.GEMMProvider = t.GEMMProvider
	o.AttentionKernel = t.AttentionKernel
	// The run folder records the settings in effect (on a copy: the
	// caller's config is left as it was given).
	rec := cfg.Clone()
	rec.Training.Eval.Every = o.EvalEvery
	if o.WarmupRatio == 0 {
		// With warmup_ratio the file keeps the ratio (and warmup_steps as
		// given, which the ratio replaces); the run prints the steps.
		rec.Training.Schedule.WarmupSteps = o.WarmupSteps
	}
	if o.Config, err = config.Resolved(rec); err != nil {
		return o, err
	}
	return o, nil
}

// earlyStopReach is a note when early stopping, on, cannot stop this run:
// it stops after patience validations without improvement on the first,
// so it needs patience+1 validations before the last step, and max_steps
// with eval.every fixes how many there are. (None at all is refused by
// Validate; eval.every 0 and max_epochs depend on the data.)
func earlyStopReach(t config.TrainingConfig) string {
	if t.MaxSteps <= 0 || t.Eval.Every <= 0 {
		return ""
	}
	n := (t.MaxSteps - 1) / t.Eval.Every
	if n >= t.EarlyStopping.Patience+1 {
		return ""
	}
	return fmt.Sprintf("training.early_stopping: patience %d needs %d validations before the last step to stop the run, and max_steps %d with eval.every %d runs %d: early stopping cannot stop this run (lower eval.every or patience)",
		t.EarlyStopping.Patience, t.EarlyStopping.Patience+1, t.MaxSteps, t.Eval.Every, n)
}

// ResolveModel maps "tiny-base" (or "") to the embedded model's folder and
// checks that any other name is a model folder.
func ResolveModel(name string) (string, error) {
	if name == "" || name == assets.TinyBase {
		return assets.Model(assets.TinyBase)
	}
	st, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) && config.IsHubID(name) {
		// A Hub id (what other trainers' configs name, and what
		// ftune init --from keeps) reads as a folder that is not there.
		return "", fmt.Errorf("model %q: no such folder, and ftune does not download models from the Hugging Face Hub: download it there (hf download %s --local-dir %s), or set model.path to the model's folder (%w)", name, name, name, err)
	}
	if err != nil {
		return "", fmt.Errorf("model %q: %w", name, err)
	}
	if !st.IsDir() || !nn.Exists(name) {
		return "", fmt.Errorf("model %q: not a Hugging Face model folder (no config.json)", name)
	}
	// Absolute: the adapter records it as its base (ftune_base.json,
	// base_model_name_or_path), which generate, eval and export read
	// from wherever they run.
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", fmt.Errorf("model %q: %w", name, err)
	}
	return abs, nil
}

// checkColumns refuses data.columns that data.shape does not read, as a
// subject.yaml's columns are refused (subject.ColumnMapping, the one
// check of both), naming the entry's line.
func checkColumns(cfg *config.RunConfig) error {
	shape, err := format.ParseShape(cfg.Data.Shape)
	if err != nil {
		return fmt.Errorf("data.shape: %w", err) // refused by Validate first
	}
	_, err = subject.ColumnMapping(shape, cfg.Data.Columns)
	var ce *subject.ColumnError
	if !errors.As(err, &ce) {
		return err
	}
	where := cfg.Where("data.columns")
	if ce.Key != "" {
		where = cfg.Where("data.columns." + ce.Key)
	}
	return &config.FieldError{Where: where, Path: "data.columns", Msg: ce.Msg, Kind: config.ErrInvalid}
}
