// Package loratest loads a model with a LoRA adapter attached, for tests
// and benchmarks of the packages above lora (training, recipes, backends,
// benchmarks), which all start from one.
package loratest

import (
	"path/filepath"
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

// SavedRandom saves, in a folder of tb's, an adapter of rank 4 on the
// q and v projections of the model folder dir, alpha as given, whose A
// and B are both random from seed (an initialised adapter's B is zero:
// it would change nothing), and returns the folder.
func SavedRandom(tb testing.TB, dir string, alpha float64, seed uint64) string {
	tb.Helper()
	m, err := nn.Load(dir, nn.LoadOptions{KeepBF16: true})
	if err != nil {
		tb.Fatal(err)
	}
	c := lora.NewConfig(4, alpha, "q_proj", "v_proj")
	c.InitLoraWeights = lora.InitLoraWeights{Bool: false}
	a, err := lora.New(m, c, "default", seed)
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), "adapter")
	if err := a.Save(out); err != nil {
		tb.Fatal(err)
	}
	return out
}
