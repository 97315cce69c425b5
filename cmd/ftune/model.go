package main

import (
	"github.com/spf13/cobra"

	"github.com/ftune/ftune"
)

// modelFlagHelp is the --model help of the commands that take --adapter.
const modelFlagHelp = `base model: a Hugging Face folder or "tiny-base" (default: the base the --adapter records, else tiny-base; with --adapter, a moved copy of that base)`

// loadModel loads a model (and adapter) through the API; its notes (the
// base chosen for an adapter, a fallback template) go to stderr.
func loadModel(cmd *cobra.Command, model, adapter string) (*ftune.Model, error) {
	return ftune.Load(model, ftune.LoadOptions{Adapter: adapter, Log: cmd.ErrOrStderr()})
}
