package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

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
	{"precision", "training.precision", "matrix products: auto (bf16 on a GPU, f32 on the CPU), bf16 or f32"},
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
			o, err := recipe.FromConfig(cfg)
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

func firstAdapter(r *recipe.Result) string {
	for _, d := range r.Adapters {
		return d
	}
	return ""
}
