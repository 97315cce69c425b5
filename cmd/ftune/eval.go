package main

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/config"
)

func newEvalCmd() *cobra.Command {
	var adapter, modelName, data, subjects, objective string
	var questions, seqLen int
	var nf4 bool
	var beta float64
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a base model, or base + adapter, on subject datasets (validation loss, exact match, multiple choice)",
		Example: `  ftune eval                                        # tiny-base on the bundled subjects
  ftune eval --adapter runs/20261126-114016/adapter   # on the base the adapter was trained on
  ftune eval --adapter runs/x/adapters --subjects '[chemistry]'   # per-subject adapters
  ftune eval --adapter runs/x/adapter --data ./prefs --objective dpo   # DPO loss and rewards on preference pairs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			sets := map[string]string{"--data": data, "--subjects": subjects, "--objective": objective, "--dpo-beta": strconv.FormatFloat(beta, 'g', -1, 64)}
			paths := map[string]string{"--data": "data.root", "--subjects": "data.subjects", "--objective": "training.objective", "--dpo-beta": "training.dpo.beta"}
			for flag, v := range sets {
				if cmd.Flags().Changed(flag[2:]) {
					if err := config.ApplyFlag(cfg, flag, paths[flag], v); err != nil {
						return err
					}
				}
			}
			cfg.Model.LoadIn4Bit = nf4
			cfg.Training.Eval.Generation.Questions = questions
			cfg.Training.Eval.Generation.Samples = min(cfg.Training.Eval.Generation.Samples, questions)
			cfg.Data.MaxLength = seqLen
			_, err := ftune.Evaluate(cmd.Context(), ftune.EvaluateOptions{Config: cfg, Adapter: adapter, Model: modelName, Log: cmd.OutOrStdout()})
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&adapter, "adapter", "", "PEFT adapter folder (or a folder of per-subject adapter folders)")
	f.StringVar(&modelName, "model", "", modelFlagHelp)
	f.StringVar(&data, "data", "", "subject data root (default: the bundled subject datasets)")
	f.StringVar(&subjects, "subjects", "", "subjects, e.g. [chemistry] (default: all)")
	f.IntVar(&questions, "questions", 20, "held-out questions per subject")
	f.IntVar(&seqLen, "seq-len", 256, "maximum example length")
	f.BoolVar(&nf4, "load-in-4bit", false, "hold the base's projection weights in NF4 (as QLoRA trains them)")
	f.StringVar(&objective, "objective", "sft", "sft (validation loss, questions) or dpo (the DPO loss and rewards on the validation pairs of preference data; the reference is the base without the adapter)")
	f.Float64Var(&beta, "dpo-beta", 0.1, "DPO's beta, with --objective dpo")
	return cmd
}
