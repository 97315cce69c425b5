package main

import (
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/config"
)

// evalShortcuts are eval's flags for config keys, applied as train's are
// (config.ApplyFlag: an error names the flag, and exits 2): train's own
// where the flag means the same (--data takes what train's takes), then
// eval's.
var evalShortcuts = []shortcut{
	evalData,
	trainShortcut("data-root"),
	{"subjects", "data.subjects", "list", "subjects to evaluate, e.g. geography,chemistry (default: all)"},
	trainShortcut("seq-len"),
	{"questions", "training.eval.generation.questions", "int", "held-out questions per subject (0: none)"},
	{"objective", "training.objective", "string", "sft (validation loss, questions) or dpo (the DPO loss and rewards on the validation pairs of preference data; the reference is the base without the adapter)"},
	{"dpo-beta", "training.dpo.beta", "float", "DPO's beta, with --objective dpo"},
}

// evalDefaults are the defaults help shows: the config's, which apply when
// a flag is not given.
func evalDefaults() map[string]string {
	d := config.Default()
	return map[string]string{
		"seq-len":   strconv.Itoa(d.Data.MaxLength),
		"questions": strconv.Itoa(d.Training.Eval.Generation.Questions),
		"objective": d.Training.Objective,
		"dpo-beta":  strconv.FormatFloat(d.Training.DPO.Beta, 'g', -1, 64),
	}
}

// evalData is train's --data, told what eval reads of it: a data file's
// validation rows are the share train held out (the same data.val_split
// and data.seed, so the same rows); a subject folder's are its val file.
var evalData = shortcut{"data", "data.files", "path", "your own data, as train takes it: a file (.jsonl, .json, .csv, .parquet, .txt), a folder of such files, a glob, or subject folders (repeatable; default: the bundled subject datasets); files are evaluated on the share train holds out (data.val_split), subject folders on their val and test files"}

// trainShortcut is train's shortcut for flag.
func trainShortcut(flag string) shortcut {
	return shortcuts[slices.IndexFunc(shortcuts, func(s shortcut) bool { return s.flag == flag })]
}

func newEvalCmd() *cobra.Command {
	var adapter, modelName string
	var nf4 bool
	values := map[string]*shortcutValue{}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a base model, or base + adapter, on subject datasets or your own data (validation loss, exact match, multiple choice)",
		Example: `  ftune eval                                        # tiny-base on the bundled subjects
  ftune eval --adapter runs/20261126-114016/adapter   # on the base the adapter was trained on
  ftune eval --adapter runs/x/adapter --data my.jsonl   # on the share of my.jsonl that train held out
  ftune eval --adapter runs/x/adapters --subjects '[chemistry]'   # per-subject adapters
  ftune eval --adapter runs/x/adapter --data ./prefs --objective dpo   # DPO loss and rewards on preference pairs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			for _, s := range evalShortcuts {
				if cmd.Flags().Changed(s.flag) {
					if err := config.ApplyFlag(cfg, "--"+s.flag, s.path, values[s.flag].yaml()); err != nil {
						return err
					}
				}
			}
			if nf4 {
				if err := config.ApplyFlag(cfg, "--load-in-4bit", "model.load_in_4bit", "true"); err != nil {
					return err
				}
			}
			// The sample answers printed are some of the questions asked.
			g := &cfg.Training.Eval.Generation
			g.Samples = min(g.Samples, max(g.Questions, 0))
			_, err := ftune.Evaluate(cmd.Context(), ftune.EvaluateOptions{Config: cfg, Adapter: adapter, Model: modelName, Log: cmd.OutOrStdout()})
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&adapter, "adapter", "", "PEFT adapter folder (or a folder of per-subject adapter folders)")
	f.StringVar(&modelName, "model", "", modelFlagHelp)
	defs := evalDefaults()
	for _, s := range evalShortcuts {
		values[s.flag] = &shortcutValue{kind: s.kind, repeat: s.path == "data.files"}
		if d, ok := defs[s.flag]; ok {
			values[s.flag].args = []string{d}
		}
		f.Var(values[s.flag], s.flag, s.usage+" ("+s.path+")")
	}
	f.BoolVar(&nf4, "load-in-4bit", false, "hold the base's projection weights in NF4 (as QLoRA trains them)")
	return cmd
}
