package export

import (
	"context"
	"path/filepath"
	"strings"
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
	if _, err := MergedHFWith(context.Background(), m, a, base, out, MergedOptions{MaxShardBytes: 0}); err != nil {
		t.Fatal(err)
	}
	merged := load(t, out, nn.LoadOptions{})
	if e := testutil.RelFrobenius(testutil.F64(smallLogits(t, merged)), testutil.F64(want)); e > 1e-5 {
		t.Errorf("merged export differs from the adapted model by %.3g", e)
	}
}

// smallLogits runs a prompt within the vocabularies of writeRandomModel
// (512) and qwen2-tiny (288).
func smallLogits(t *testing.T, m *nn.Model) []float32 {
	t.Helper()
	ids := tensor.FromHost(m.Backend, tensor.I64, []int64{0, 1, 212, 87, 103, 2, 9, 200, 17, 255, 280, 64}, 1, 12)
	out, err := m.Forward(nil, nn.Batch{InputIDs: ids}, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Logits.Value.F32()
}

// TestMergedHFUntiesTrainedCopies: on a model with tied embeddings, an
// adapter that trained a copy of one end (modules_to_save, PEFT's default
// without ensure_weight_tying) is exported untied: lm_head.weight written,
// tie_word_embeddings false, and the merged model computes the adapted
// one. The merged GGUF refuses it (llama.cpp's architectures may ignore a
// separate output table).
func TestMergedHFUntiesTrainedCopies(t *testing.T) {
	base := filepath.Join("..", "testdata", "fixtures", "qwen2-tiny")
	for _, entries := range [][]string{{"embed_tokens"}, {"lm_head"}, {"embed_tokens", "lm_head"}} {
		m := load(t, base, nn.LoadOptions{})
		if !m.Config.TieEmbeddings {
			t.Fatal("qwen2-tiny is expected to tie its embeddings")
		}
		c := lora.NewConfig(4, 8, "q_proj", "v_proj")
		c.InitLoraWeights = lora.InitLoraWeights{Bool: false}
		c.ModulesToSave = entries
		a, err := lora.New(m, c, "test", 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range a.Copies {
			d := tensor.F32Data(cp.Weight.Value)
			for i := range d {
				d[i] += 0.03 * float32(i%7-3)
			}
		}
		if err := a.Attach(m); err != nil {
			t.Fatal(err)
		}
		want := smallLogits(t, m)
		lora.Detach(m)
		out := filepath.Join(t.TempDir(), "merged")
		res, err := MergedHFWith(context.Background(), m, a, base, out, MergedOptions{MaxShardBytes: 0})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(res.Notes, " "), "tie_word_embeddings: false") {
			t.Errorf("%v: no note about untying: %v", entries, res.Notes)
		}
		merged := load(t, out, nn.LoadOptions{})
		if merged.Config.TieEmbeddings {
			t.Errorf("%v: the merged config still ties the embeddings", entries)
		}
		if e := testutil.RelFrobenius(testutil.F64(smallLogits(t, merged)), testutil.F64(want)); e > 1e-5 {
			t.Errorf("%v: merged export differs from the adapted model by %.3g", entries, e)
		}
	}
}
