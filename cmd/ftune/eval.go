package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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
	{"objective", "training.objective", "string", "sft (validation loss, questions), dpo (the DPO loss and rewards on the validation pairs of preference data) or kto (the KTO loss, rewards and KL estimate on the validation examples of unpaired feedback); the reference is the run's: the base without the adapter, or the adapter it continued (training.lora.init_from)"},
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
var evalData = shortcut{"data", "data.files", "path", "your own data, as train takes it: a file (.jsonl, .json, .csv, .parquet, .txt, .md), a folder of such files, a glob, or subject folders (repeatable; default: the bundled subject datasets); files are evaluated on the share train holds out (data.val_split), subject folders on their val and test files"}

// trainShortcut is train's shortcut for flag.
func trainShortcut(flag string) shortcut {
	return shortcuts[slices.IndexFunc(shortcuts, func(s shortcut) bool { return s.flag == flag })]
}

func newEvalCmd() *cobra.Command {
	var adapter, modelName, configPath string
	var sets []string
	var nf4 bool
	values := map[string]*shortcutValue{}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a base model, or base + adapter, on subject datasets or your own data (validation loss, exact match, multiple choice)",
		Long: `Evaluate a base model, or base + adapter, on subject datasets or your own data
(validation loss, exact match, multiple choice).

The settings start from the run file given with -c; else, for an adapter a
training run wrote (RUN/adapter, RUN/adapters, a checkpoint's adapter), from
that run's config.yaml, so that its data is read and the rows it held out
(data.val_split, data.seed) are the ones evaluated (its relative data paths
are taken from the folder the run started in); else from the defaults.
--set and the flags below change them.`,
		Example: `  ftune eval                                        # tiny-base on the bundled subjects
  ftune eval --adapter runs/20261126-114016/adapter   # the run's own data and held-out share, on the base the adapter was trained on
  ftune eval --adapter runs/x/adapter --data my.jsonl   # on the share of my.jsonl that train held out
  ftune eval -c run.yaml --set data.val_split=0.2   # the base on a run file's data
  ftune eval --adapter runs/x/adapters --subjects '[chemistry]'   # per-subject adapters
  ftune eval --adapter runs/x/adapter --data ./prefs --objective dpo   # DPO loss and rewards on preference pairs
  ftune eval --adapter runs/x/adapter --data feedback.jsonl --objective kto   # KTO loss and rewards on unpaired feedback`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, run, err := evalConfig(adapter, configPath, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if err := config.Apply(cfg, sets); err != nil {
				return err
			}
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
			if run != nil {
				warnHeldOutChanged(cmd.OutOrStdout(), run, cfg)
			}
			// The sample answers printed are some of the questions asked.
			g := &cfg.Training.Eval.Generation
			g.Samples = min(g.Samples, max(g.Questions, 0))
			_, err = ftune.Evaluate(cmd.Context(), ftune.EvaluateOptions{Config: cfg, Adapter: adapter, Model: modelName, Log: cmd.OutOrStdout()})
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "YAML run configuration (default: the config.yaml of the run that trained --adapter, else the defaults)")
	f.StringArrayVar(&sets, "set", nil, "override one config key, e.g. data.val_split=0.2 (repeatable)")
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

// evalConfig is the configuration eval starts from: the run file, else
// the config.yaml of the run that trained the adapter (said on log), else
// the defaults. run is that run's configuration (nil: the adapter is not
// in a run folder).
func evalConfig(adapter, configPath string, log io.Writer) (cfg, run *config.RunConfig, err error) {
	if adapter != "" {
		var path string
		if run, path, err = ftune.AdapterRunConfig(adapter); err != nil {
			return nil, nil, err
		}
		if run != nil && configPath == "" {
			fmt.Fprintf(log, "note: the settings of the run that trained the adapter: %s (-c for others)\n", path)
			return run.Clone(), run, nil
		}
	}
	if configPath != "" {
		cfg, err = config.Load(configPath)
		return cfg, run, err
	}
	return config.Default(), run, nil
}

// heldOutKeys decide which of a data file's rows train held out.
var heldOutKeys = []string{"data.val_split", "data.seed", "data.augment.dedup"}

// warnHeldOutChanged says when cfg evaluates the run's own data on other
// rows than the run held out: some of them were trained on, which makes
// the validation loss look better than it is.
// (The bundled subjects hold out their val files, whatever these keys.)
func warnHeldOutChanged(log io.Writer, run, cfg *config.RunConfig) {
	if run.Data.Root == "" && len(run.Data.Files) == 0 || !sameData(run.Data, cfg.Data) {
		return
	}
	var changed []string
	for _, c := range config.Diff(run, cfg) {
		if slices.Contains(heldOutKeys, c.Path) {
			changed = append(changed, fmt.Sprintf("%s %s (the run's %s)", c.Path, c.To, c.From))
		}
	}
	if len(changed) > 0 {
		fmt.Fprintf(log, "warning: %s: the rows held out are not the ones the run held out, and some of them were trained on\n", strings.Join(changed, ", "))
	}
}

// sameData says a and b read the same data root and files, whichever way
// their paths are written.
func sameData(a, b config.DataConfig) bool {
	abs := func(p string) string {
		if p == "" {
			return p
		}
		if q, err := filepath.Abs(p); err == nil {
			return q
		}
		return p
	}
	return abs(a.Root) == abs(b.Root) && slices.EqualFunc(a.Files, b.Files, func(x, y string) bool { return abs(x) == abs(y) })
}
