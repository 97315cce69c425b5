package main

import (
	"github.com/spf13/cobra"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/recipe"
)

// modelFlagHelp is the --model help of the commands that take --adapter.
const modelFlagHelp = `base model: a Hugging Face folder or "tiny-base" (default: the base the --adapter records, else tiny-base; with --adapter, a moved copy of that base)`

// loadModel loads a model (and adapter) through the API; its notes (the
// base chosen for an adapter, a fallback template) go to stderr.
func loadModel(cmd *cobra.Command, model, adapter string) (*ftune.Model, error) {
	return ftune.Load(model, ftune.LoadOptions{Adapter: adapter, Log: cmd.ErrOrStderr()})
}

// modelConfig reads the config.json of the folder --model and --adapter
// load (the adapter's base when --model is not given), without the
// weights: what a command checks before it spends the load on them.
func modelConfig(model, adapter string) (dir string, cfg nn.Config, err error) {
	if adapter != "" {
		dir, _, err = ftune.ResolveBase(adapter, model)
	} else {
		dir, err = recipe.ResolveModel(model)
	}
	if err != nil {
		return "", nn.Config{}, err
	}
	cfg, err = nn.LoadConfig(dir)
	return dir, cfg, err
}
