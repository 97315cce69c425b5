package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/recipe"
)

// trainFlags are the command-line shortcuts for common config keys.
type trainFlags struct {
	configPath string
	sets       []string
	noProgress bool
	memoryLean bool
	perSubject bool
	tokenCache string
	resume     string
}

// shortcut maps a flag to its config key.
var shortcuts = []struct{ flag, path, usage string }{
	{"model", "model.path", "base model: a Hugging Face folder or tiny-base (embedded)"},
	{"data", "data.root", "subject data root (default: the bundled subject datasets)"},
	{"subjects", "data.subjects", "subjects to train on, e.g. [geography,chemistry] (default: all)"},
	{"max-steps", "training.max_steps", "optimizer steps"},
	{"output", "training.tracking.output_dir", "folder of run folders ($VARS expand)"},
	{"run-name", "training.tracking.run_name", "run folder name (default: the start time)"},
	{"device", "training.device", "auto, cpu, cuda or cuda:N"},
	{"lr", "training.optimizer.lr", "peak learning rate"},
	{"batch-size", "training.batch_size", "rows per micro-batch"},
	{"seq-len", "data.max_length", "row length in tokens"},
	{"eval-questions", "training.eval.generation.questions", "held-out questions per subject"},
	{"eval-every", "training.eval.every", "validate every N steps (0: at epoch ends)"},
	{"seed", "training.seed", "seed of initialisation, dropout and data order"},
	{"max-time", "training.max_time", "stop with a checkpoint after this long, e.g. 10m"},
}

func newTrainCmd() *cobra.Command {
	var tf trainFlags
	values := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Fine-tune a model with LoRA (no flags: tiny-base on the bundled subject datasets)",
		Long: `Fine-tune a base model with LoRA adapters on subject datasets, evaluate before
and after (validation loss, exact match and multiple choice on held-out
questions), write a run folder (config.yaml, metrics.jsonl, TensorBoard events,
manifest, checkpoints, report.html) and export the adapter in PEFT format.

With no flags it fine-tunes the embedded tiny-base model on the bundled
geography, chemistry and US-history datasets on the CPU. A YAML file (-c,
see "ftune init") sets everything; --set overrides any key; the flags below
are shortcuts for the common ones.`,
		Example: `  ftune train
  ftune train --max-steps 20 --output /tmp/runs
  ftune train -c run.yaml --set training.optimizer.lr=1e-3 --set training.lora.r=8
  ftune train --subjects '[chemistry]'
  ftune train --subjects '[geography,chemistry]' --per-subject
  ftune train --memory-lean            # NF4 base + gradient checkpointing
  ftune train --resume runs/20261126-114016   # continue after Ctrl-C or a crash`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			path := tf.configPath
			if path == "" && tf.resume != "" {
				// A resumed run uses the configuration it was started with.
				path = filepath.Join(tf.resume, "config.yaml")
			}
			if path != "" {
				var err error
				if cfg, err = config.Load(path); err != nil {
					return err
				}
			}
			if err := config.Apply(cfg, tf.sets); err != nil {
				return err
			}
			for _, s := range shortcuts {
				if f := cmd.Flags().Lookup(s.flag); f != nil && f.Changed {
					if err := config.ApplyFlag(cfg, "--"+s.flag, s.path, *values[s.flag]); err != nil {
						return err
					}
				}
			}
			if tf.memoryLean {
				cfg.Model.LoadIn4Bit, cfg.Training.GradientCheckpointing = true, true
			}
			if tf.perSubject {
				cfg.Training.Adapters = "per-subject"
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			o, err := optionsFrom(cfg)
			if err != nil {
				return err
			}
			o.TokenCache = tf.tokenCache
			o.ResumeDir = tf.resume
			o.Log = cmd.OutOrStdout()
			f, isFile := o.Log.(*os.File)
			o.Progress = !tf.noProgress && isFile && term.IsTerminal(int(f.Fd()))
			res, err := recipe.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "\nfinished %d steps in %s", res.Steps, res.Duration.Round(time.Second))
			if res.Stopped != "" {
				fmt.Fprintf(w, " (stopped: %s)", res.Stopped)
			}
			fmt.Fprintf(w, "\nrun folder: %s\n", res.RunDir)
			for name, dir := range res.Adapters {
				fmt.Fprintf(w, "adapter %s: %s\n", name, dir)
			}
			if len(res.Adapters) > 0 {
				fmt.Fprintf(w, "try it:     ftune generate --adapter %s --prompt %q\n", firstAdapter(res), "Which element has the symbol Fe?")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&tf.configPath, "config", "c", "", "YAML run configuration (see ftune init)")
	f.StringArrayVar(&tf.sets, "set", nil, "override one config key, e.g. training.optimizer.lr=2e-4 (repeatable)")
	for _, s := range shortcuts {
		values[s.flag] = f.String(s.flag, "", s.usage+" ("+s.path+")")
	}
	f.BoolVar(&tf.memoryLean, "memory-lean", false, "NF4 base weights and gradient checkpointing")
	f.BoolVar(&tf.perSubject, "per-subject", false, "one adapter per subject, routed per row (training.adapters=per-subject)")
	f.StringVar(&tf.tokenCache, "token-cache", "", "read (and build when missing or stale) token caches here, as `ftune data prepare` writes them")
	f.BoolVar(&tf.noProgress, "no-progress", false, "plain log lines even on a terminal")
	f.StringVar(&tf.resume, "resume", "", "continue the run in this folder from its newest usable checkpoint (after a crash or Ctrl-C)")
	return cmd
}

// optionsFrom maps a validated configuration onto the recipe.
func optionsFrom(cfg *config.RunConfig) (recipe.Options, error) {
	o := recipe.Defaults()
	var err error
	if o.ModelDir, err = resolveModel(cfg.Model.Path); err != nil {
		return o, err
	}
	if cfg.Model.DType != "auto" && cfg.Model.DType != "bf16" {
		return o, fmt.Errorf("model.dtype %q: the CPU path keeps the checkpoint's bf16 weights (auto); other storage types are not implemented", cfg.Model.DType)
	}
	d := cfg.Data
	switch {
	case len(d.Files) > 0:
		return o, fmt.Errorf("data.files is not implemented yet: put the files in a subject folder (train.jsonl, val.jsonl, test.jsonl) under data.root")
	case d.Root == "":
		if o.DataRoot, err = assets.Subjects(); err != nil {
			return o, err
		}
	default:
		o.DataRoot = d.Root
	}
	if d.Format != "auto" || d.Shape != "auto" {
		return o, fmt.Errorf("data.format/data.shape: subject folders are read by file extension and shape detection (auto); set shape and columns per subject in subject.yaml")
	}
	o.Template, o.SeqLen, o.Pack, o.Subjects = d.Template, d.MaxLength, d.Packing, d.Subjects
	t := cfg.Training
	o.Mode = recipe.Shared
	if t.Adapters == "per-subject" {
		o.Mode = recipe.PerSubject
	}
	o.R, o.Alpha, o.Dropout, o.Targets, o.RSLoRA = t.LoRA.R, t.LoRA.Alpha, t.LoRA.Dropout, t.LoRA.Targets, t.LoRA.RSLoRA
	o.Load4Bit = cfg.Model.LoadIn4Bit
	if o.Load4Bit && (t.Quantization.BlockSize != 64 || !t.Quantization.DoubleQuant) {
		return o, fmt.Errorf("training.quantization: only NF4 with block_size 64 and double_quant true (bitsandbytes' defaults) is wired into training")
	}
	op := t.Optimizer
	o.Optimizer, o.LR, o.Eps, o.WeightDecay, o.Momentum = op.Name, op.LR, op.Eps, op.WeightDecay, op.Momentum
	if len(op.Betas) == 2 {
		o.Betas = [2]float64{op.Betas[0], op.Betas[1]}
	}
	o.Schedule, o.WarmupSteps = t.Schedule.Name, t.Schedule.WarmupSteps
	o.BatchSize, o.GradAccum, o.Steps, o.Epochs = t.BatchSize, t.GradAccum, t.MaxSteps, t.MaxEpochs
	if o.Steps > 0 && o.WarmupSteps > o.Steps {
		o.WarmupSteps = o.Steps / 10 // the default warmup, scaled to a short run
	}
	o.MaxTime, o.ClipNorm, o.GradCheckpointing = time.Duration(t.MaxTime), t.ClipNorm, t.GradientCheckpointing
	o.NoStepArena = !t.StepArena
	o.SpikeFactor, o.LogEvery, o.NEFTuneAlpha = t.SpikeFactor, t.LogEvery, t.NEFTuneAlpha
	o.EvalEvery, o.EvalMaxBatches = t.Eval.Every, t.Eval.MaxBatches
	if o.Steps > 0 && o.EvalEvery > o.Steps {
		o.EvalEvery = o.Steps
	}
	o.EvalQuestions, o.MaxNewTokens, o.Samples = t.Eval.Generation.Questions, t.Eval.Generation.MaxNewTokens, t.Eval.Generation.Samples
	c := t.Checkpointing
	o.CheckpointEvery, o.KeepLast, o.Monitor, o.MonitorMode, o.TopK = c.Every, c.KeepLast, c.Monitor, c.Mode, c.TopK
	if t.EarlyStopping.Enabled {
		o.EarlyStopPatience, o.EarlyStopMinDelta = t.EarlyStopping.Patience, t.EarlyStopping.MinDelta
		o.Monitor, o.MonitorMode = t.EarlyStopping.Monitor, t.EarlyStopping.Mode
	}
	o.OutDir, o.RunName, o.TensorBoard = t.Tracking.OutputDir, t.Tracking.RunName, t.Tracking.TensorBoard
	o.Seed = t.Seed
	o.Device = t.Device
	// The run folder records the settings in effect.
	cfg.Training.Schedule.WarmupSteps, cfg.Training.Eval.Every = o.WarmupSteps, o.EvalEvery
	if o.Config, err = config.Resolved(cfg); err != nil {
		return o, err
	}
	return o, nil
}

func firstAdapter(r *recipe.Result) string {
	for _, d := range r.Adapters {
		return d
	}
	return ""
}
