package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/recipe"
	"github.com/ftune/ftune/track"
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
	// The device and precision train takes: an adapter trained on a GPU
	// is evaluated there too (the run's config.yaml says its device), and
	// these choose another.
	trainShortcut("device"),
	trainShortcut("precision"),
}

// evalDefaults are the defaults help shows for the flags of config keys
// that have one. A flag not given leaves its key as the settings have it:
// those of the run that trained --adapter (its config.yaml) or of -c's
// file, else the config's defaults; help says both ("the run's, else
// 20"), since the config's alone would be wrong for most adapters.
func evalDefaults() map[string]string {
	d := config.Default()
	defs := map[string]string{
		"seq-len":   strconv.Itoa(d.Data.MaxLength),
		"questions": strconv.Itoa(d.Training.Eval.Generation.Questions),
		"objective": d.Training.Objective,
		"dpo-beta":  strconv.FormatFloat(d.Training.DPO.Beta, 'g', -1, 64),
		"device":    d.Training.Device,
		"precision": d.Training.Precision,
	}
	for flag, v := range defs {
		defs[flag] = "the run's, else " + v
	}
	return defs
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
	var adapter, modelName, configPath, split string
	var sets []string
	var nf4, asJSON bool
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
--set and the flags below change them. A run folder that lost its
config.yaml is refused unless the data is named (--data, --data-root,
--subjects, a --set of data.files, data.root or data.subjects, or -c):
the defaults would evaluate other data. One adapter of a per-subject run
(RUN/adapters/SUBJECT) is evaluated on its subject unless --subjects or
--data says otherwise.

Data files without a validation file are evaluated on the share train
holds out of them (data.val_split, data.seed), so that a base and an
adapter trained on the file are compared on rows neither was trained on;
--split all evaluates every example (a test file no run trained on).
A subject folder's val file is evaluated whole either way. The number of
held-out questions scored, and what capped it, is said after the scores.

The scores are printed on stdout, notes and warnings on stderr. --json
prints one JSON document on stdout instead: the adapter (null for the
base alone), the objective, the data (files, root, subjects, val_split,
seed), the split, the metrics by the names a run logs them in
metrics.jsonl under eval_after/ (val/loss, val/perplexity,
val/token_accuracy, val/SUBJECT/loss, exact_match/SUBJECT|all,
multiple_choice/..., or the DPO and KTO losses and rewards) and the
questions scored (null under dpo and kto, which ask none); the scores'
text goes to stderr with the notes.`,
		Example: `  ftune eval                                        # tiny-base on the bundled subjects
  ftune eval --adapter runs/20261126-114016/adapter   # the run's own data and held-out share, on the base the adapter was trained on
  ftune eval --adapter runs/x/adapter --data my.jsonl   # on the share of my.jsonl that train held out
  ftune eval --adapter runs/x/adapter --data test.jsonl --split all   # on all of a test file
  ftune eval --adapter runs/x/adapters/chemistry    # one adapter of a per-subject run: its subject alone
  ftune eval -c run.yaml --set data.val_split=0.2   # the base on a run file's data
  ftune eval --adapter runs/x/adapters --subjects '[chemistry]'   # per-subject adapters
  ftune eval --adapter runs/x/adapter --data ./prefs --objective dpo   # DPO loss and rewards on preference pairs
  ftune eval --adapter runs/x/adapter --data feedback.jsonl --objective kto   # KTO loss and rewards on unpaired feedback
  ftune eval --adapter runs/x/adapter --json | jq '.metrics["val/loss"]'   # one JSON document on stdout`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Notes and warnings on stderr, the scores on stdout (on
			// stderr too under --json, whose document is stdout's).
			f, w, results := cmd.Flags(), cmd.ErrOrStderr(), cmd.OutOrStdout()
			if asJSON {
				results = w
			}
			if split != splitHeldOut && split != splitAll {
				return usageError{fmt.Errorf("--split %s: want %s (the share train holds out of data files) or %s (every example)", split, splitHeldOut, splitAll)}
			}
			named := namedData(f, sets)
			cfg, run, err := evalConfig(adapter, configPath, named, w)
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
				if named == "" && configPath == "" {
					subjectOfAdapter(w, adapter, run, cfg)
				}
				if split == splitHeldOut {
					warnHeldOutChanged(w, run, cfg)
				}
			}
			noteSplit(w, split, named, run, cfg)
			// The sample answers printed are some of the questions asked.
			g := &cfg.Training.Eval.Generation
			g.Samples = min(g.Samples, max(g.Questions, 0))
			ev, err := ftune.Evaluate(cmd.Context(), ftune.EvaluateOptions{Config: cfg, Adapter: adapter, Model: modelName, AllRows: split == splitAll, Log: w, Results: results})
			if err != nil {
				if given := subjectsGiven(f, values["subjects"], sets); given != "" && errors.Is(err, recipe.ErrUnknownSubject) {
					return usageError{fmt.Errorf("%s: %w", given, err)}
				}
				return err
			}
			questionsFlag := "training.eval.generation.questions"
			if f.Changed("questions") {
				questionsFlag = "--questions"
			}
			sft := cfg.Training.Objective == "sft" // the others ask no questions
			if sft {
				sayQuestions(results, ev, g.Questions, questionsFlag)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), evalOf(ev, adapter, split, sft, g.Questions, cfg))
			}
			return nil
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
		f.Var(values[s.flag], s.flag, s.usage+" ("+s.path+")")
		if d, ok := defs[s.flag]; ok {
			// For help alone: a flag not given is not applied (RunE
			// applies those Changed), so the value stays empty.
			f.Lookup(s.flag).DefValue = d
		}
	}
	f.BoolVar(&nf4, "load-in-4bit", false, "hold the base's projection weights in NF4 (as QLoRA trains them)")
	addJSONFlag(cmd, &asJSON)
	f.StringVar(&split, "split", splitHeldOut, "which examples of data files (without a validation file) are evaluated: held-out, the share train holds out of them (data.val_split, data.seed), or all, every one (a test file no run trained on)")
	return cmd
}

// The values of eval's --split.
const (
	splitHeldOut = "held-out"
	splitAll     = "all"
)

// dataKeys are the config keys that say which data is evaluated.
var dataKeys = []string{"data.files", "data.root", "data.subjects"}

// namedData is how the command line names the data to evaluate (the
// first of --data, --data-root, --subjects, or a --set of one of
// dataKeys), "" when it does not.
func namedData(f *pflag.FlagSet, sets []string) string {
	for _, flag := range []string{"data", "data-root", "subjects"} {
		if f.Changed(flag) {
			return "--" + flag
		}
	}
	for _, s := range sets {
		key, _, _ := strings.Cut(s, "=")
		if slices.Contains(dataKeys, strings.TrimSpace(key)) {
			return "--set " + strings.TrimSpace(key)
		}
	}
	return ""
}

// subjectsGiven is the command line's choice of subjects, as given
// ("--subjects nope", "--set data.subjects=[nope]"), "" when it makes
// none: a subject the data lacks is then bad usage.
func subjectsGiven(f *pflag.FlagSet, v *shortcutValue, sets []string) string {
	if f.Changed("subjects") { // applied after --set
		return "--subjects " + v.String()
	}
	given := ""
	for _, s := range sets { // the last one counts
		if key, _, _ := strings.Cut(s, "="); strings.TrimSpace(key) == "data.subjects" {
			given = "--set " + s
		}
	}
	return given
}

// evalConfig is the configuration eval starts from: the run file, else
// the config.yaml of the run that trained the adapter (said on log), else
// the defaults. run is that run's configuration (nil: the adapter is not
// in a run folder, or its run's config.yaml is missing). An adapter
// whose run folder lost its config.yaml is refused unless the data is
// chosen: a run file, or named (how, from namedData): the defaults would
// evaluate other data than the run's without a word.
func evalConfig(adapter, configPath, named string, log io.Writer) (cfg, run *config.RunConfig, err error) {
	if adapter != "" {
		var path string
		run, path, err = ftune.AdapterRunConfig(adapter)
		switch {
		case errors.Is(err, ftune.ErrRunConfigMissing) && configPath != "":
			fmt.Fprintf(log, "note: %s is missing: evaluating with the settings of %s (-c); the rows held out may not be the ones the run held out\n", path, configPath)
			run, err = nil, nil
		case errors.Is(err, ftune.ErrRunConfigMissing) && named != "":
			fmt.Fprintf(log, "note: %s is missing: evaluating the data %s names, with the default settings besides; the rows held out may not be the ones the run held out\n", path, named)
			run, err = nil, nil
		case errors.Is(err, ftune.ErrRunConfigMissing):
			return nil, nil, fmt.Errorf("adapter %s: %s is missing, so the data the run trained on and the rows it held out are not known (the defaults, the bundled subjects, are other data): name the data, --data FILE (its held-out share, data.val_split and data.seed; --split all for all of it), --subjects or --data-root for subject folders, or -c RUN_FILE", adapter, path)
		case err != nil:
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

// subjectOfAdapter narrows cfg, the settings of a per-subject run (run),
// to the subject of adapter when adapter is one of that run's adapters
// (RUN/adapters/SUBJECT, or a checkpoint's): the others were trained by
// other adapters. It says so on log.
func subjectOfAdapter(log io.Writer, adapter string, run, cfg *config.RunConfig) {
	if run.Training.Adapters != "per-subject" {
		return
	}
	clean := filepath.Clean(adapter)
	if filepath.Base(filepath.Dir(clean)) != "adapters" {
		return
	}
	if _, err := os.Stat(filepath.Join(clean, "adapter_config.json")); err != nil {
		return // the folder of them all, or not an adapter: the load says
	}
	name := filepath.Base(clean)
	cfg.Data.Subjects = []string{name}
	fmt.Fprintf(log, "note: %s is the run's adapter for subject %s: evaluating %s alone (--subjects for others)\n", adapter, name, name)
}

// noteSplit says which rows of data files are evaluated, and why, where
// the command line names data the run did not train on (and so might be
// a test file, to evaluate whole), or asks for all of the run's own.
func noteSplit(log io.Writer, split, named string, run, cfg *config.RunConfig) {
	own := run != nil && sameData(run.Data, cfg.Data)
	switch {
	case split == splitAll && own:
		fmt.Fprintf(log, "warning: --split all: the run trained on this data (all but the share it held out), so the loss looks better than the adapter is; leave --split out for the share it held out\n")
	case split == splitHeldOut && named != "" && len(cfg.Data.Files) > 0 && !own:
		fmt.Fprintf(log, "note: data files without a validation file are evaluated on the share train would hold out of them (data.val_split %g, data.seed %d), so that a base and an adapter trained on them compare on the same unseen rows; --split all evaluates all of them (a test file no run trained on)\n", cfg.Data.ValSplit, cfg.Data.Seed)
	}
}

// questionsPer counts the held-out questions ev scored, by subject.
func questionsPer(ev ftune.Evaluation) map[string]int {
	per := map[string]int{}
	if ev.QA != nil {
		for _, r := range ev.QA.Results {
			per[r.Subject]++
		}
	}
	return per
}

// sayQuestions says how many held-out questions ev scored, per subject,
// and what capped them: want a subject (flag names the setting), or a
// test file that holds fewer questions with an answer, or none.
func sayQuestions(log io.Writer, ev ftune.Evaluation, want int, flag string) {
	if ev.QA == nil || len(ev.QA.Results) == 0 {
		if want > 0 {
			fmt.Fprintf(log, "questions scored: 0: %s %d asks up to %d a subject from its test file, and no subject evaluated has one with questions\n", flag, want, want)
		}
		return
	}
	per := questionsPer(ev)
	var counts, short []string
	for _, name := range slices.Sorted(maps.Keys(per)) {
		counts = append(counts, fmt.Sprintf("%s %d", name, per[name]))
		if per[name] < want {
			if len(short) == 0 {
				short = append(short, fmt.Sprintf("%s's test file holds %d", name, per[name]))
			} else {
				short = append(short, fmt.Sprintf("%s's %d", name, per[name]))
			}
		}
	}
	why := fmt.Sprintf("the first %d of each subject's test file (%s %d)", want, flag, want)
	if len(short) > 0 {
		why = fmt.Sprintf("%s %d asks up to %d a subject, and %s (questions with an answer, all asked)", flag, want, want, strings.Join(short, ", "))
	}
	fmt.Fprintf(log, "questions scored: %d (%s): %s\n", len(ev.QA.Results), strings.Join(counts, ", "), why)
}

// evalJSON is `ftune eval --json`.
type evalJSON struct {
	Adapter   *string      `json:"adapter"` // as given; null: the base alone
	Objective string       `json:"objective"`
	Data      evalDataJSON `json:"data"`
	Split     string       `json:"split"` // held-out or all (--split)
	// Metrics are named as a run logs them under eval_after/
	// (recipe.Evaluation.Metrics).
	Metrics   track.Values       `json:"metrics"`
	Questions *evalQuestionsJSON `json:"questions"` // null under dpo and kto
}

// evalDataJSON is the data evaluated, as the settings name it.
type evalDataJSON struct {
	Files    []string `json:"files"`
	Root     string   `json:"root"`     // "": the bundled subjects (unless files)
	Subjects []string `json:"subjects"` // empty: every subject found
	ValSplit float64  `json:"val_split"`
	Seed     uint64   `json:"seed"`
}

// evalQuestionsJSON is what sayQuestions says: the held-out questions
// scored, in all and by subject, and how many a subject may ask.
type evalQuestionsJSON struct {
	Scored     int            `json:"scored"`
	BySubject  map[string]int `json:"by_subject"`
	PerSubject int            `json:"per_subject"` // training.eval.generation.questions (--questions)
}

// evalOf is ev as eval --json prints it.
func evalOf(ev ftune.Evaluation, adapter, split string, sft bool, questions int, cfg *config.RunConfig) evalJSON {
	out := evalJSON{
		Objective: cfg.Training.Objective,
		Data: evalDataJSON{Files: nonNil(cfg.Data.Files), Root: cfg.Data.Root, Subjects: nonNil(cfg.Data.Subjects),
			ValSplit: cfg.Data.ValSplit, Seed: cfg.Data.Seed},
		Split:   split,
		Metrics: track.Values(ev.Metrics()),
	}
	if adapter != "" {
		out.Adapter = &adapter
	}
	if sft {
		per := questionsPer(ev)
		n := 0
		for _, c := range per {
			n += c
		}
		out.Questions = &evalQuestionsJSON{Scored: n, BySubject: per, PerSubject: questions}
	}
	return out
}

// nonNil is s, or an empty list for nil: [] in JSON, not null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
