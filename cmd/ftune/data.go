package main

import (
	"fmt"
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

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Check and prepare subject datasets",
	}
	var modelName, root string
	var seqLen int
	var skip bool
	open := func() (*subject.Manager, recipe.Text, error) {
		dir, err := recipe.ResolveModel(modelName)
		if err != nil {
			return nil, recipe.Text{}, err
		}
		cfg, err := nn.LoadConfig(dir)
		if err != nil {
			return nil, recipe.Text{}, err
		}
		fallback := 0
		if len(cfg.EOSTokenIDs) > 0 {
			fallback = cfg.EOSTokenIDs[0]
		}
		text, err := recipe.LoadText(dir, fallback)
		if err != nil {
			return nil, recipe.Text{}, err
		}
		if root == "" {
			if root, err = assets.Subjects(); err != nil {
				return nil, recipe.Text{}, err
			}
		}
		m, err := subject.Open(os.ExpandEnv(root))
		return m, text, err
	}
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Report examples, tokens, truncation and duplicates across splits per subject",
		Example: `  ftune data validate
  ftune data validate --data ./my-subjects --model ./SmolLM2-135M --seq-len 512`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, text, err := open()
			if err != nil {
				return err
			}
			rep, err := m.Validate(format.Options{Skip: skip}, func(*subject.Subject) (*prep.Preprocessor, error) {
				return text.Preprocessor(seqLen), nil
			})
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			if !rep.OK() {
				return fmt.Errorf("data: %s has problems (see the report above)", m.Root)
			}
			return nil
		},
	}
	var out string
	prepare := &cobra.Command{
		Use:   "prepare",
		Short: "Tokenise every subject split into memory-mapped token caches (rebuilt when the tokenizer or template changes)",
		Example: `  ftune data prepare --out .cache/tokens
  ftune data prepare --data ./my-subjects --model ./Qwen2.5-0.5B`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, text, err := open()
			if err != nil {
				return err
			}
			p := text.Preprocessor(seqLen)
			key := prep.CacheKey{Tokenizer: text.TokenizerHash, Template: text.TemplateHash, Options: prep.OptionsHash(p.Opts, p.EOS)}
			for _, s := range m.Subjects {
				for _, split := range subject.Splits {
					if _, ok := s.Files[split]; !ok {
						continue
					}
					path := filepath.Join(out, s.Name, string(split)+".tokens")
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						return err
					}
					c, rebuilt, err := prep.OpenOrBuild(path, key, func() ([]prep.Tokenized, error) {
						exs, _, err := s.Load(split, format.Options{Skip: skip})
						if err != nil {
							return nil, err
						}
						docs, _, err := p.TokenizeAll(exs)
						return docs, err
					})
					if err != nil {
						return err
					}
					state := "up to date"
					if rebuilt {
						state = "written"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%-12s %-5s %5d documents %7d tokens  %s (%s)\n", s.Name, split, c.Len(), c.NumTokens(), path, state)
					c.Close()
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
