package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/train/recipe"
)

func newTrainCmd() *cobra.Command {
	o := recipe.Defaults()
	var (
		modelName, dataRoot, subjects string
		perSubject, lean              bool
		noProgress                    bool
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Fine-tune a model with LoRA (no flags: tiny-base on the bundled subject datasets)",
		Long: `Fine-tune a base model with LoRA adapters on subject datasets, evaluate before
and after (validation loss, exact match and multiple choice on held-out
questions), write a run folder (metrics.jsonl, TensorBoard events, manifest,
checkpoints, report.html) and export the adapter in PEFT format.

With no flags it fine-tunes the embedded tiny-base model on the bundled
geography, chemistry and US-history datasets on the CPU.`,
		Example: `  ftune train
  ftune train --max-steps 20 --output /tmp/runs
  ftune train --subjects chemistry --lr 1e-3
  ftune train --subjects geography,chemistry --per-subject
  ftune train --memory-lean            # NF4 base + gradient checkpointing
  ftune train --model ./SmolLM2-135M --data ./my-subjects`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.ModelDir, err = resolveModel(modelName); err != nil {
				return err
			}
			if dataRoot == "" {
				if o.DataRoot, err = assets.Subjects(); err != nil {
					return err
				}
			} else {
				o.DataRoot = os.ExpandEnv(dataRoot)
			}
			o.OutDir = os.ExpandEnv(o.OutDir)
			if subjects != "" {
				o.Subjects = strings.Split(subjects, ",")
			}
			if perSubject {
				o.Mode = recipe.PerSubject
			}
			if lean {
				o = recipe.MemoryLean(o)
			}
			if o.WarmupSteps > o.Steps {
				o.WarmupSteps = o.Steps / 10
			}
			if o.EvalEvery > o.Steps {
				o.EvalEvery = 0
			}
			o.Log = cmd.OutOrStdout()
			f, isFile := o.Log.(*os.File)
			o.Progress = !noProgress && isFile && term.IsTerminal(int(f.Fd()))
			res, err := recipe.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "\nfinished %d steps in %s", res.Steps, res.Duration.Round(1e9))
			if res.Stopped != "" {
				fmt.Fprintf(w, " (stopped: %s)", res.Stopped)
			}
			fmt.Fprintf(w, "\nrun folder: %s\n", res.RunDir)
			for name, dir := range res.Adapters {
				fmt.Fprintf(w, "adapter %s: %s\n", name, dir)
			}
			fmt.Fprintf(w, "try it:     ftune generate --adapter %s --prompt %q\n", firstAdapter(res), "What is the capital of France?")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelName, "model", "tiny-base", "base model: a Hugging Face folder or the embedded tiny-base")
	f.StringVar(&dataRoot, "data", "", "subject data root (default: the bundled subject datasets)")
	f.StringVar(&subjects, "subjects", "", "comma-separated subjects to train on (default: all)")
	f.BoolVar(&perSubject, "per-subject", false, "one adapter per subject, routed per row, instead of one shared adapter")
	f.BoolVar(&lean, "memory-lean", false, "NF4 base weights and gradient checkpointing")
	f.StringVar(&o.OutDir, "output", o.OutDir, "runs folder ($VARS expand)")
	f.StringVar(&o.RunName, "run-name", "", "run folder name (default: the start time)")
	f.IntVar(&o.Steps, "max-steps", o.Steps, "optimizer steps")
	f.IntVar(&o.BatchSize, "batch-size", o.BatchSize, "rows per micro-batch")
	f.IntVar(&o.GradAccum, "grad-accum", o.GradAccum, "micro-batches per optimizer step")
	f.IntVar(&o.SeqLen, "seq-len", o.SeqLen, "row length in tokens")
	f.BoolVar(&o.Pack, "pack", o.Pack, "pack several examples per row (attention never crosses them)")
	f.Float64Var(&o.LR, "lr", o.LR, "peak learning rate")
	f.IntVar(&o.WarmupSteps, "warmup-steps", o.WarmupSteps, "linear warmup steps")
	f.StringVar(&o.Schedule, "schedule", o.Schedule, "learning-rate schedule: constant, linear or cosine")
	f.IntVar(&o.R, "lora-r", o.R, "LoRA rank")
	f.Float64Var(&o.Alpha, "lora-alpha", o.Alpha, "LoRA alpha")
	f.Float64Var(&o.Dropout, "lora-dropout", o.Dropout, "LoRA dropout")
	f.IntVar(&o.EvalEvery, "eval-every", o.EvalEvery, "validate every N steps (0: at the end)")
	f.IntVar(&o.EvalQuestions, "eval-questions", o.EvalQuestions, "held-out questions per subject")
	f.Uint64Var(&o.Seed, "seed", o.Seed, "seed for initialisation, dropout and data order")
	f.DurationVar(&o.MaxTime, "max-time", 0, "stop (with a checkpoint) after this long, e.g. 10m")
	f.BoolVar(&noProgress, "no-progress", false, "plain log lines even on a terminal")
	return cmd
}

func firstAdapter(r *recipe.Result) string {
	for _, d := range r.Adapters {
		return d
	}
	return ""
}
