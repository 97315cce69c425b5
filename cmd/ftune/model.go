package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/config"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/recipe"
)

// modelFlagHelp is the --model help of the commands that take --adapter.
const modelFlagHelp = `base model: a Hugging Face folder or "tiny-base" (default: the base the --adapter records, else tiny-base; with --adapter, a moved copy of that base)`

// deviceFlags are --device and --precision of a command that runs the
// model where training would (generate); the zero value is the CPU at
// float32, with no line said.
type deviceFlags struct{ device, precision string }

// addDeviceFlags adds --device and --precision with train's names, help
// and defaults (training.device and training.precision's), so that a
// model is chatted with where it was trained unless the user says
// otherwise.
func addDeviceFlags(f *pflag.FlagSet, d *deviceFlags) {
	def := config.Default().Training
	f.StringVar(&d.device, "device", def.Device, trainShortcut("device").usage)
	f.StringVar(&d.precision, "precision", def.Precision, trainShortcut("precision").usage)
}

// check refuses a misspelt --device or --precision, naming the flag,
// before anything is read or loaded.
func (d deviceFlags) check() error {
	if err := recipe.CheckDevice(d.device); err != nil {
		return usageError{fmt.Errorf("--device %w", err)}
	}
	if err := recipe.CheckPrecision(d.precision); err != nil {
		return usageError{fmt.Errorf("--precision %w", err)}
	}
	return nil
}

// loadModel loads a model (and adapter) through the API on dev; its notes
// (the device line, the base chosen for an adapter, a fallback template)
// go to stderr.
func loadModel(cmd *cobra.Command, model, adapter string, dev deviceFlags) (*ftune.Model, error) {
	return ftune.Load(model, ftune.LoadOptions{Adapter: adapter, Device: dev.device, Precision: dev.precision, Log: cmd.ErrOrStderr()})
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
