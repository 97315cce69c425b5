package parity

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// checkTinyWeights: the committed model.safetensors of a tiny family
// folder is what its seeded generator gives (its provenance), byte for
// byte. With the environment variable rewrite set to 1 it is rewritten.
func checkTinyWeights(t *testing.T, folder string, weights func() []safetensors.Tensor, rewrite string) {
	t.Helper()
	path := filepath.Join(folder, "model.safetensors")
	if os.Getenv(rewrite) == "1" {
		if err := safetensors.Write(path, weights(), map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(t.TempDir(), "model.safetensors")
	if err := safetensors.Write(tmp, weights(), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s (%d bytes) is not what its generator gives (%d bytes): regenerate with %s=1 or restore it", path, len(got), len(want), rewrite)
	}
}

// checkLlamaCpp compares ftune's float32 logits on a tiny family folder
// with the golden logits llama.cpp computed on ftune's F32 GGUF export of
// it (llamacpp_logits.safetensors: at least 3 prompts), within tol
// relative Frobenius. Then each negative control, applied to a fresh load,
// must miss prompt 0's golden logits by more than 1e-2, so the golden file
// is known to see what the control breaks.
func checkLlamaCpp(t *testing.T, folder, family string, tol float64, controls map[string]func(*nn.Model)) {
	t.Helper()
	golden, err := safetensors.Open(filepath.Join(folder, "llamacpp_logits.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer golden.Close()
	load := func() *nn.Model {
		m, err := nn.Load(folder, nn.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	run := func(m *nn.Model, p int) float64 {
		ids, shape := ints(t, golden, fmt.Sprintf("p%d.input_ids", p))
		out, err := m.Forward(nil, nn.Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, shape...)}, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return testutil.RelFrobenius(out.Logits.Value.F64(), floats(t, golden, fmt.Sprintf("p%d.logits", p)))
	}
	m := load()
	n := 0
	for ; golden.Has(fmt.Sprintf("p%d.input_ids", n)); n++ {
		report(t, fmt.Sprintf("%s logits vs llama.cpp p%d", family, n), run(m, n), tol)
	}
	if n < 3 {
		t.Fatalf("%d prompts in the golden file, want 3", n)
	}
	if len(controls) == 0 {
		t.Fatal("no negative control: nothing shows the golden file checks the family's own features")
	}
	for name, edit := range controls {
		c := load()
		edit(c)
		e := run(c, 0)
		t.Logf("negative control, %s: relative error %.3g", name, e)
		if e < 1e-2 {
			t.Errorf("with %s the logits still match llama.cpp's (relative error %.3g): the golden file does not check it", name, e)
		}
	}
}
