package export

import (
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// TestMergedHFDoRAAndModulesToSave: a float32 merged export of a DoRA
// adapter with trained copies of embed_tokens and lm_head loads back as a
// plain model that computes what the adapted model computed: the DoRA
// weights are (m/n)·(W + s·B·A) and the copies replace their modules.
func TestMergedHFDoRAAndModulesToSave(t *testing.T) {
	base := writeRandomModel(t)
	m := load(t, base, nn.LoadOptions{})
	c := lora.NewConfig(4, 8, "all-linear")
	c.UseDoRA = true
	c.InitLoraWeights = lora.InitLoraWeights{Bool: false}
	c.ModulesToSave = []string{"embed_tokens", "lm_head"}
	a, err := lora.New(m, c, "test", 3)
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range a.Params() {
		d := tensor.F32Data(p.Value)
		for i := range d {
			switch {
			case name == "model.embed_tokens.weight" || name == "lm_head.weight":
				d[i] += 0.02 * float32(i%7-3)
			case len(d) == p.Value.Dim(0) && p.Value.Rank() == 1: // a magnitude
				d[i] *= 1 + 0.1*float32(i%5-2)
			}
		}
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	want := smallLogits(t, m)
	lora.Detach(m)
	if e := testutil.RelFrobenius(testutil.F64(smallLogits(t, m)), testutil.F64(want)); e < 1e-3 {
		t.Fatalf("the adapter hardly changes the logits (%.3g)", e)
	}
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := MergedHFResult(m, a, base, out, 0); err != nil {
		t.Fatal(err)
	}
	merged := load(t, out, nn.LoadOptions{})
	if e := testutil.RelFrobenius(testutil.F64(smallLogits(t, merged)), testutil.F64(want)); e > 1e-5 {
		t.Errorf("merged export differs from the adapted model by %.3g", e)
	}
}

// smallLogits runs a prompt within writeRandomModel's vocabulary of 512.
func smallLogits(t *testing.T, m *nn.Model) []float32 {
	t.Helper()
	ids := tensor.FromHost(m.Backend, tensor.I64, []int64{0, 1, 412, 87, 103, 2, 9, 300, 17, 255, 511, 64}, 1, 12)
	out, err := m.Forward(nil, nn.Batch{InputIDs: ids}, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Logits.Value.F32()
}
