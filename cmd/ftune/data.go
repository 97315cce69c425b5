package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/data/tokenizer"
	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/recipe"
)

// dataEnv is what both data commands work with: the subjects ftune train
// would read from the same data flags, and the model's tokenizer and
// template.
type dataEnv struct {
	inputs []recipe.DataInput
	where  []string // the data as given, for messages
	text   recipe.Text
	cfg    nn.Config
	opts   recipe.Options
}

// folders are the subject folders among the inputs, as a Manager (nil
// when there are none).
func (e dataEnv) folders() *subject.Manager {
	var m *subject.Manager
	for _, in := range e.inputs {
		if in.Folder == nil {
			continue
		}
		if m == nil {
			m = &subject.Manager{Root: strings.Join(e.where, ", ")}
		}
		m.Subjects = append(m.Subjects, in.Folder)
	}
	return m
}

// readOptions are how subject folders are read: as a run reads them
// (data.text_unit), skipping bad records with skip.
func (e dataEnv) readOptions(skip bool) format.Options {
	fo, _ := e.opts.ReadOptions() // checked when the inputs were resolved (DataInputs)
	fo.Skip = skip
	return fo
}

// preprocessor tokenises up to seqLen tokens (long plain text kept whole,
// as the run keeps it to split), learns what the run would
// (data.train_on_inputs, data.mask_history), counts examples over the
// model's positions and stops when ctx is done.
func (e dataEnv) preprocessor(ctx context.Context, seqLen int) *prep.Preprocessor {
	p := e.text.Preprocessor(seqLen)
	p.Opts.MaxPositions = e.cfg.MaxPositions
	e.opts.SetTokenizing(p)
	return p.WithContext(ctx)
}

// warnPositions says when the sequence length allows more tokens than
// the model has positions: such examples were kept without a word.
func (e dataEnv) warnPositions(w io.Writer, seqLen int) {
	if n := e.cfg.MaxPositions; n > 0 && seqLen > n {
		fmt.Fprintf(w, "warning: --seq-len %d is more than the model's %d positions (max_position_embeddings)\n", seqLen, n)
	}
}

// preference reports whether o trains on preference records
// (training.objective dpo or kto).
func preference(o recipe.Options) bool {
	return o.Objective == recipe.ObjectiveDPO || o.Objective == recipe.ObjectiveKTO
}

// interrupted turns a cancelled context into the error the user sees.
func interrupted(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("data %s: interrupted (%w); nothing more was written", what, context.Cause(ctx))
	}
	return nil
}

// dataFlags are train's shortcuts that say which data a run reads; the
// data commands take them with train's meaning (config.ApplyFlag, then
// recipe.DataInputs), so that they check what train would read.
var dataFlags = []string{"data", "data-root", "subjects"}

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Check and prepare training data (subject folders or your own data files) as ftune train reads it",
		Example: `  ftune data validate                          # the bundled subjects, as train reads them
  ftune data validate --data my.jsonl --show 3 # your file: counts, and its first 3 examples tokenised
  ftune data prepare --data my.jsonl --out .cache/tokens   # token caches train --token-cache reads`,
	}
	var modelName, configPath string
	var sets []string
	var seqLen int
	var skip bool
	var show int
	var colorMode string
	values := map[string]*shortcutValue{}
	open := func(c *cobra.Command) (dataEnv, error) {
		// The run file's settings (-c), as train reads them, then --set
		// and the flags.
		rc := config.Default()
		if configPath != "" {
			var err error
			if rc, err = config.Load(configPath); err != nil {
				return dataEnv{}, err
			}
		}
		if err := config.Apply(rc, sets); err != nil {
			return dataEnv{}, err
		}
		if c.Flags().Changed("model") {
			rc.Model.Path = modelName
		}
		if !c.Flags().Changed("seq-len") {
			seqLen = rc.Data.MaxLength
		}
		if skip {
			if err := config.ApplyFlag(rc, "--skip-bad", "data.skip_bad", "true"); err != nil {
				return dataEnv{}, err
			}
		}
		skip = rc.Data.SkipBad // a run file's data.skip_bad too, as train reads it
		for _, name := range dataFlags {
			if f := c.Flags().Lookup(name); f != nil && f.Changed {
				i := slices.IndexFunc(shortcuts, func(s shortcut) bool { return s.flag == name })
				if err := config.ApplyFlag(rc, "--"+name, shortcuts[i].path, values[name].yaml()); err != nil {
					return dataEnv{}, err
				}
			}
		}
		if err := rc.Validate(); err != nil {
			return dataEnv{}, err
		}
		o, err := recipe.FromConfig(rc) // the bundled subjects when no data is given
		if err != nil {
			return dataEnv{}, err
		}
		cfg, err := nn.LoadConfig(o.ModelDir)
		if err != nil {
			return dataEnv{}, err
		}
		fallback := cfg.PadFallback()
		// The template and thinking setting train would tokenize with
		// (it read the model's own template, whatever data.template said).
		text, err := recipe.TextFor(o, fallback)
		if err != nil {
			return dataEnv{}, err
		}
		if text.Fallback != "" {
			fmt.Fprintln(c.ErrOrStderr(), text.Fallback)
		}
		if preference(o) && c.Name() == "prepare" {
			return dataEnv{}, fmt.Errorf("training.objective %s: ftune data prepare writes token caches of supervised data, and preference records are not token-cached (ftune train tokenises them each run); to check them, run ftune data validate with the same flags (--show N prints the first records' prompt and completions)", o.Objective)
		}
		ins, where, err := recipe.DataInputs(o)
		for _, in := range ins {
			if note := in.PassedNote(); note != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), note)
			}
		}
		return dataEnv{inputs: ins, where: where, text: text, cfg: cfg, opts: o}, err
	}
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Report examples, tokens, truncation and duplicates per subject split or data file",
		Example: `  ftune data validate
  ftune data validate --data my.jsonl --data more/*.csv --seq-len 512
  ftune data validate --data ./my-subjects --model ./SmolLM2-135M
  ftune data validate --data-root ./my-data    # one subject per folder or data file
  ftune data validate -c run.yaml              # the run file's model, data and max_length
  ftune data validate --data my.jsonl --show 3 # the first 3 examples, learnt tokens marked
  ftune data validate --data prefs.jsonl --set training.objective=dpo --show 2`,
		Long: `Report examples, tokens, truncation and duplicates per subject split or data file,
as ftune train would read and tokenise them with the same options (-c, --set,
--model, --seq-len). Under training.objective dpo or kto it counts the
preference pairs (dpo) or unpaired examples (kto) the run trains on.

--show N first prints the first N training examples as the run tokenises them
(its chat template, truncation to data.max_length, data.long_text splitting,
data.train_on_inputs and data.mask_history): each one's text, its token count,
whether it was truncated, split or dropped, and the learnt tokens (those whose
label the loss reads) marked: green and underlined on a terminal, else between
⟦ and ⟧ (--color chooses). ↵ marks a line break, ⇥ a tab, ⟨U+XXXX⟩ a character
that does not print, or one of ⟦ ⟧ ↵ ⇥ ⟨ ⟩ found in the data itself (so every
mark shown is ftune's), ⟨0xNN⟩ a byte that is not UTF-8. Under dpo or kto it
prints each record's prompt and its completions (chosen and rejected, or the
completion and its label), the completions learnt.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if show < 0 {
				return usageError{fmt.Errorf("--show %d: want a number of examples, 0 or more", show)}
			}
			color, err := useColor(colorMode, cmd.OutOrStdout())
			if err != nil {
				return usageError{err}
			}
			env, err := open(cmd)
			if err != nil {
				return err
			}
			env.warnPositions(cmd.ErrOrStderr(), seqLen)
			w := cmd.OutOrStdout()
			var v viewer
			if show > 0 {
				tok, err := tokenizer.Load(env.opts.ModelDir)
				if err != nil {
					return err
				}
				v = viewer{tok: tok, color: color}
			}
			if preference(env.opts) {
				if show > 0 {
					if err := showPreferences(ctx, w, env, seqLen, skip, show, v); err != nil {
						return err
					}
				}
				return validatePreferences(ctx, w, env, seqLen, skip)
			}
			p := env.preprocessor(ctx, seqLen)
			if skip {
				p.SkipBad = recipe.BadRecord // over a template's or tokenizer's limit
			}
			if show > 0 {
				if err := showExamples(ctx, w, env, p, skip, show, v); err != nil {
					return err
				}
			}
			var tally prep.Stats
			p.Tally = &tally
			ok := true
			m := env.folders()
			if m != nil {
				rep, err := m.Validate(env.readOptions(skip), func(*subject.Subject) (*prep.Preprocessor, error) {
					return p, nil
				})
				if err := interrupted(ctx, "validate"); err != nil {
					return err
				}
				if err != nil {
					return err
				}
				fmt.Fprint(w, rep.String())
				ok = rep.OK()
			}
			files := &subject.FilesReport{}
			for _, in := range env.inputs {
				if in.Folder == nil {
					files.Subjects = append(files.Subjects, validateFiles(ctx, env.opts, in, skip, p))
				}
			}
			if err := interrupted(ctx, "validate"); err != nil {
				return err
			}
			if len(files.Subjects) > 0 {
				if m != nil {
					fmt.Fprintln(w) // after the folders' table
				}
				fmt.Fprint(w, files.String())
				ok = ok && files.OK()
			}
			if tally.Skipped > 0 { // the table's skipped column counts what reading skipped
				fmt.Fprintf(w, "\n%d records skipped while tokenizing (data.skip_bad):\n", tally.Skipped)
				for _, why := range tally.SkipErrors {
					fmt.Fprintf(w, "  %s\n", why)
				}
				if n := tally.Skipped - len(tally.SkipErrors); n > 0 {
					fmt.Fprintf(w, "  ... and %d more\n", n)
				}
			}
			if w := tally.PositionsWarning(p.Opts.MaxPositions); w != "" { // what the tally counted against
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
			}
			if !ok {
				return fmt.Errorf("data: %s has problems (see the report above)", strings.Join(env.where, ", "))
			}
			return nil
		},
	}
	validate.Flags().IntVar(&show, "show", 0, "first print the first N training examples as the run tokenises them, learnt tokens marked (see above)")
	validate.Flags().StringVar(&colorMode, "color", "auto", "mark learnt tokens of --show with colour: auto (on a terminal, unless NO_COLOR is set), always, or never (⟦ ⟧ brackets)")
	var out string
	prepare := &cobra.Command{
		Use:   "prepare",
		Short: "Tokenise every subject split (a data file's subject: its training examples) into memory-mapped token caches (rebuilt when the data, tokenizer or template changes)",
		Example: `  ftune data prepare --out .cache/tokens
  ftune data prepare --data ./my-subjects --model ./Qwen2.5-0.5B
  ftune data prepare --data my.jsonl --out .cache/tokens   # .cache/tokens/my/train.tokens`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// --out stands in for data.token_cache, and is expanded as
			// that path key is (a leading ~/, then $VARS; an unset one is
			// refused), so that it names the folder train --token-cache
			// and a run file's token_cache name; before the data is read.
			if cmd.Flags().Changed("out") {
				// An empty one (--out "$CACHE" with CACHE unset in the
				// shell) would write the caches into the working folder.
				if strings.TrimSpace(out) == "" {
					return usageError{fmt.Errorf("--out is empty: give the folder for the caches (e.g. --out token-cache)")}
				}
				expanded, err := config.ExpandPath(out)
				if err != nil {
					return usageError{fmt.Errorf("--out %s: %w", out, err)}
				}
				out = expanded
			}
			env, err := open(cmd)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("out") && env.opts.TokenCache != "" {
				out = env.opts.TokenCache // the run file's, where train reads them
			}
			env.warnPositions(cmd.ErrOrStderr(), seqLen)
			p := env.preprocessor(ctx, seqLen)
			if skip {
				p.SkipBad = recipe.BadRecord
			}
			for _, in := range env.inputs {
				if s := in.Folder; s != nil {
					for _, split := range subject.Splits {
						if _, ok := s.Files[split]; !ok {
							continue
						}
						load := func() ([]format.Example, prep.Hash, error) {
							exs, rep, err := s.Load(split, env.readOptions(skip))
							if err == nil {
								recipe.SayHowRead(cmd.OutOrStdout(), rep) // as a run says them
							}
							return exs, prep.HashExamples(exs), err
						}
						if err := prepareSplit(ctx, cmd, env, p, s.Name, split, load, nil, filepath.Join(out, s.Name, string(split)+".tokens")); err != nil {
							return err
						}
					}
					continue
				}
				// Data files: their examples are the subject's training
				// split, cached where a run looks for it, under the key a
				// run finds it by: the files' bytes and how they are read.
				// Reading says each file's shape and the malformed records
				// it skipped (--skip-bad), as a run says them; with
				// --skip-bad the files are read even when their cache is up
				// to date, as a run with data.skip_bad reads them, so that
				// no record is dropped unsaid.
				in.Format.Skip = skip
				load := func() ([]format.Example, prep.Hash, error) { return recipe.ReadDataFiles(ctx, in, cmd.OutOrStdout()) }
				hashed := func() (prep.Hash, bool, error) { return recipe.HashDataFiles(in) }
				if skip {
					hashed = nil
				}
				if err := prepareSplit(ctx, cmd, env, p, in.Name, subject.Train, load, hashed, filepath.Join(out, in.Name, string(subject.Train)+".tokens")); err != nil {
					return err
				}
			}
			return nil
		},
	}
	prepare.Flags().StringVar(&out, "out", "token-cache", "folder for the caches (default: the run file's data.token_cache, else token-cache)")
	for _, c := range []*cobra.Command{validate, prepare} {
		c.Flags().StringVarP(&configPath, "config", "c", "", "YAML run configuration whose model and data settings to use, as ftune train -c reads it")
		c.Flags().StringArrayVar(&sets, "set", nil, "override one config key, e.g. data.max_length=512 (repeatable)")
		c.Flags().StringVar(&modelName, "model", "tiny-base", "model whose tokenizer and chat template to use (model.path)")
		for _, s := range shortcuts {
			if !slices.Contains(dataFlags, s.flag) {
				continue
			}
			if values[s.flag] == nil {
				values[s.flag] = &shortcutValue{kind: s.kind, repeat: s.path == "data.files"}
			}
			usage := s.usage
			switch s.flag {
			case "data": // as train reads it, which its own help leaves unsaid
				usage = "the data as ftune train --data reads it: a file (.jsonl, .json, .csv, .parquet, .txt, .md), a folder of such files (one subject), a glob, a subject folder, or a folder of subject folders (repeatable; default: the bundled subject datasets)"
			case "subjects":
				usage = "subjects to read, e.g. geography,chemistry (default: all)"
			}
			c.Flags().Var(values[s.flag], s.flag, usage+" ("+s.path+")")
		}
		c.Flags().IntVar(&seqLen, "seq-len", 256, "maximum example length in tokens (data.max_length)")
		c.Flags().BoolVar(&skip, "skip-bad", false, "count and skip malformed records instead of failing (data.skip_bad)")
	}
	cmd.AddCommand(validate, prepare)
	return cmd
}

// validateFiles counts a file subject's files as a run reads them: its
// training files, and a Hugging Face dataset folder's validation split,
// which the run validates on, and its test split, which the run reads
// for its held-out questions only (not at all when there are none).
func validateFiles(ctx context.Context, o recipe.Options, in recipe.DataInput, skip bool, p *prep.Preprocessor) *subject.FileSubjectReport {
	fo := in.Format
	fo.Skip = skip
	splits := map[subject.Split][]string{subject.Train: in.Files, subject.Val: in.Val}
	if o.EvalQuestions > 0 {
		splits[subject.Test] = in.Test
	}
	r := subject.ValidateSplits(ctx, in.Name, splits, fo, p)
	if len(splits[subject.Test]) > 0 {
		r.Notes = append(r.Notes, "the test split is read for the held-out questions only (eval.generation.questions): never trained or validated on")
	}
	return r
}

// prepareSplit writes (or finds up to date) the token cache of one split
// of subject name, whose examples load reads with the data key their
// cache is found under: their content (prep.HashExamples), or a file
// subject's bytes as read (recipe.ReadDataFiles), so an edited data file
// (or subject.yaml) is tokenised again instead of being reported up to
// date. hashed, when set, gives the key without reading a record
// (recipe.HashDataFiles): an up-to-date cache is then found without
// parsing the data.
func prepareSplit(ctx context.Context, cmd *cobra.Command, env dataEnv, p *prep.Preprocessor, name string, split subject.Split, load func() ([]format.Example, prep.Hash, error), hashed func() (prep.Hash, bool, error), path string) (err error) {
	if err := interrupted(ctx, "prepare"); err != nil {
		return err
	}
	made, err := fsutil.MkdirAllMade(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// An interrupted or failed first prepare left empty cache
			// folders behind ("nothing more was written").
			fsutil.RemoveEmpty(made)
		}
	}()
	keyOf := func(data prep.Hash) prep.CacheKey {
		return prep.CacheKey{Tokenizer: env.text.TokenizerHash, Template: env.text.TemplateHash, Options: prep.OptionsHash(p.Opts, p.EOS), Data: data}
	}
	var c *prep.Cache
	if _, err := os.Stat(path); err == nil && hashed != nil {
		data, ok, err := hashed()
		if err != nil {
			return err
		}
		if ok {
			c, _ = prep.OpenCache(path, keyOf(data)) // else read and rebuilt below, saying why
		}
	}
	var st prep.Stats
	rebuilt := false
	if c == nil {
		exs, data, err := load()
		if err != nil {
			return err
		}
		c, rebuilt, err = prep.OpenOrBuildTokenization(ctx, path, keyOf(data), cmd.ErrOrStderr(), func() (prep.Tokenization, error) {
			t, err := p.TokenizeAllOutcomes(exs)
			if err != nil {
				return t, err
			}
			st = t.Stats
			if err := t.Stats.NoneKeptError(fmt.Sprintf("subject %s %s", name, split), p.Opts.MaxLen); err != nil {
				return t, err
			}
			if t.Stats.Skipped > 0 {
				// A cache is keyed on the records as read: a run reading it
				// would leave the skipped ones out unsaid.
				return t, fmt.Errorf("subject %s %s: %d records skipped while tokenizing (data.skip_bad), the first %s: a token cache holds every record; fix or remove them, or train without a cache (ftune train --skip-bad skips them and says so)", name, split, t.Stats.Skipped, t.Stats.SkipErrors[0])
			}
			t.Keys = prep.ExampleKeys(exs) // what a run holding out a share checks for repeats
			return t, nil
		})
		if err := interrupted(ctx, "prepare"); err != nil {
			return err
		}
		if err != nil {
			return err
		}
	}
	defer c.Close()
	if err := c.CheckVocab(env.cfg.VocabSize); err != nil {
		return err
	}
	state := "up to date"
	if rebuilt {
		state = "written"
	} else { // the counts the cache records
		st = c.Stats(p.Opts.MaxPositions)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%-12s %-5s %5d documents %7d tokens (%d truncated, %d dropped)  %s (%s)\n", name, split, c.Len(), c.NumTokens(), st.Truncated, st.Dropped+st.DroppedNoLabel, path, state)
	// p's limit, not the model's: SetTokenizing leaves it zero when long
	// examples are split into rows (data.long_text: split), which are never
	// over the model's positions.
	if w := st.PositionsWarning(p.Opts.MaxPositions); w != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: subject %s %s: %s\n", name, split, w)
	}
	return nil
}
