package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/assets"
	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
	"github.com/ftune/ftune/data/subject"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/recipe"
)

// dataEnv is what both data commands work with.
type dataEnv struct {
	m    *subject.Manager
	text recipe.Text
	cfg  nn.Config
}

// preprocessor tokenises up to seqLen tokens, counts examples over the
// model's positions and stops when ctx is done.
func (e dataEnv) preprocessor(ctx context.Context, seqLen int) *prep.Preprocessor {
	p := e.text.Preprocessor(seqLen)
	p.Opts.MaxPositions = e.cfg.MaxPositions
	return p.WithContext(ctx)
}

// warnPositions says when the sequence length allows more tokens than
// the model has positions: such examples were kept without a word.
func (e dataEnv) warnPositions(w io.Writer, seqLen int) {
	if n := e.cfg.MaxPositions; n > 0 && seqLen > n {
		fmt.Fprintf(w, "warning: --seq-len %d is more than the model's %d positions (max_position_embeddings)\n", seqLen, n)
	}
}

// interrupted turns a cancelled context into the error the user sees.
func interrupted(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("data %s: interrupted (%v); nothing more was written", what, context.Cause(ctx))
	}
	return nil
}

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Check and prepare subject datasets",
	}
	var modelName, root string
	var seqLen int
	var skip bool
	open := func() (dataEnv, error) {
		dir, err := recipe.ResolveModel(modelName)
		if err != nil {
			return dataEnv{}, err
		}
		cfg, err := nn.LoadConfig(dir)
		if err != nil {
			return dataEnv{}, err
		}
		fallback := 0
		if len(cfg.EOSTokenIDs) > 0 {
			fallback = cfg.EOSTokenIDs[0]
		}
		text, err := recipe.LoadText(dir, fallback)
		if err != nil {
			return dataEnv{}, err
		}
		if root == "" {
			if root, err = assets.Subjects(); err != nil {
				return dataEnv{}, err
			}
		}
		m, err := subject.Open(os.ExpandEnv(root))
		if errors.Is(err, subject.ErrNoSubjects) {
			// ftune train reads a root of data files as one subject per
			// file (its held-out share drawn at run time); these commands
			// work on the train/val/test files of subject folders.
			err = fmt.Errorf("%w; ftune train reads data files in a root as subjects (one per file), but ftune data validate and prepare work on subject folders only: check a file with ftune train --data FILE --max-steps 1", err)
		}
		return dataEnv{m: m, text: text, cfg: cfg}, err
	}
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Report examples, tokens, truncation and duplicates across splits per subject",
		Example: `  ftune data validate
  ftune data validate --data ./my-subjects --model ./SmolLM2-135M --seq-len 512`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := open()
			if err != nil {
				return err
			}
			env.warnPositions(cmd.ErrOrStderr(), seqLen)
			p := env.preprocessor(ctx, seqLen)
			var tally prep.Stats
			p.Tally = &tally
			rep, err := env.m.Validate(format.Options{Skip: skip}, func(*subject.Subject) (*prep.Preprocessor, error) {
				return p, nil
			})
			if err := interrupted(ctx, "validate"); err != nil {
				return err
			}
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			if w := tally.PositionsWarning(env.cfg.MaxPositions); w != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
			}
			if !rep.OK() {
				return fmt.Errorf("data: %s has problems (see the report above)", env.m.Root)
			}
			return nil
		},
	}
	var out string
	prepare := &cobra.Command{
		Use:   "prepare",
		Short: "Tokenise every subject split into memory-mapped token caches (rebuilt when the data, tokenizer or template changes)",
		Example: `  ftune data prepare --out .cache/tokens
  ftune data prepare --data ./my-subjects --model ./Qwen2.5-0.5B`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := open()
			if err != nil {
				return err
			}
			env.warnPositions(cmd.ErrOrStderr(), seqLen)
			p := env.preprocessor(ctx, seqLen)
			for _, s := range env.m.Subjects {
				for _, split := range subject.Splits {
					if _, ok := s.Files[split]; !ok {
						continue
					}
					if err := prepareSplit(ctx, cmd, env, p, s, split, filepath.Join(out, s.Name, string(split)+".tokens"), skip); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	prepare.Flags().StringVar(&out, "out", "token-cache", "folder for the caches")
	for _, c := range []*cobra.Command{validate, prepare} {
		c.Flags().StringVar(&modelName, "model", "tiny-base", "model whose tokenizer and chat template to use")
		c.Flags().StringVar(&root, "data", "", "subject data root (default: the bundled subject datasets)")
		c.Flags().IntVar(&seqLen, "seq-len", 256, "maximum example length in tokens")
		c.Flags().BoolVar(&skip, "skip-bad", false, "count and skip malformed records instead of failing")
	}
	cmd.AddCommand(validate, prepare)
	return cmd
}

// prepareSplit writes (or finds up to date) the token cache of one split.
// The cache is keyed on the examples' content, so an edited data file (or
// subject.yaml) is tokenised again instead of being reported up to date.
func prepareSplit(ctx context.Context, cmd *cobra.Command, env dataEnv, p *prep.Preprocessor, s *subject.Subject, split subject.Split, path string, skip bool) error {
	if err := interrupted(ctx, "prepare"); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	exs, _, err := s.Load(split, format.Options{Skip: skip})
	if err != nil {
		return err
	}
	key := prep.CacheKey{Tokenizer: env.text.TokenizerHash, Template: env.text.TemplateHash,
		Options: prep.OptionsHash(p.Opts, p.EOS), Data: prep.HashExamples(exs)}
	var st prep.Stats
	c, rebuilt, err := prep.OpenOrBuildContext(ctx, path, key, func() ([]prep.Tokenized, error) {
		docs, stats, err := p.TokenizeAll(exs)
		if err != nil {
			return nil, err
		}
		st = stats
		return docs, stats.NoneKeptError(fmt.Sprintf("subject %s %s", s.Name, split), p.Opts.MaxLen)
	})
	if err := interrupted(ctx, "prepare"); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CheckVocab(env.cfg.VocabSize); err != nil {
		return err
	}
	state := "up to date"
	if rebuilt {
		state = "written"
	} else { // the counts of the cache as it is
		st = prep.Stats{}
		for i := range c.Len() {
			if n := c.DocLen(i); n > env.cfg.MaxPositions && env.cfg.MaxPositions > 0 {
				if st.OverPositions == 0 {
					st.FirstOverPositions = fmt.Sprintf("%s document %d", path, i)
				}
				st.OverPositions++
				st.Longest = max(st.Longest, n)
			}
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%-12s %-5s %5d documents %7d tokens  %s (%s)\n", s.Name, split, c.Len(), c.NumTokens(), path, state)
	if w := st.PositionsWarning(env.cfg.MaxPositions); w != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: subject %s %s: %s\n", s.Name, split, w)
	}
	return nil
}
