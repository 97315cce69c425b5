// Package loratest loads a model with a LoRA adapter attached, for tests
// and benchmarks of the packages above lora (training, recipes, backends,
// benchmarks), which all start from one.
package loratest

import (
	"testing"

	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
)

// Attached loads the model folder dir with opt and attaches a new adapter
// named "default" of config c, initialised from seed; any failure ends tb.
func Attached(tb testing.TB, dir string, opt nn.LoadOptions, c *lora.Config, seed uint64) (*nn.Model, *lora.Adapter) {
	tb.Helper()
	m, err := nn.Load(dir, opt)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := lora.New(m, c, "default", seed)
	if err != nil {
		tb.Fatal(err)
	}
	if err := a.Attach(m); err != nil {
		tb.Fatal(err)
	}
	return m, a
}
