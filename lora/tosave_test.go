package lora

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/quant/nf4"
	"github.com/ftune/ftune/tensor"
)

func toSaveAdapter(t *testing.T, m *nn.Model, entries ...string) *Adapter {
	t.Helper()
	c := NewConfig(4, 8, "q_proj", "v_proj")
	c.ModulesToSave = entries
	a, err := New(m, c, "default", 2)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestModulesToSaveTrainsCopies: embed_tokens and lm_head become full
// trainable copies (PEFT's ModulesToSaveWrapper): the model starts as the
// base, gradients reach the copies and not the base, and changing a copy
// changes the output while the base weights stay as they were.
func TestModulesToSaveTrainsCopies(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	m.SetTrainable(false)
	base := logitsOf(t, m)
	a := toSaveAdapter(t, m, "embed_tokens", "lm_head")
	p := a.Params()
	for _, name := range []string{"model.embed_tokens.weight", "lm_head.weight"} {
		if p[name] == nil || !p[name].RequiresGrad() {
			t.Fatalf("no trainable copy %s among %d params", name, len(p))
		}
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelFrobenius(logitsOf(t, m), base); e != 0 {
		t.Errorf("fresh copies change the logits by %.3g", e)
	}
	ids := tensor.FromHost(m.Backend, tensor.I64, []int64{5, 9, 2, 7, 100, 3}, 2, 3)
	tp := autograd.NewTape()
	out, err := m.Forward(tp, nn.Batch{InputIDs: ids, Labels: ids}, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.embed_tokens.weight", "lm_head.weight"} {
		if p[name].Grad == nil {
			t.Errorf("%s got no gradient", name)
		}
	}
	if m.Embed.Grad != nil || m.LMHead.Weight.Grad != nil {
		t.Error("the frozen base embeddings got a gradient")
	}
	embed0 := m.Embed.Value.F64()
	tensor.F32Data(p["model.embed_tokens.weight"].Value)[5*m.Config.HiddenSize] += 1
	tensor.F32Data(p["lm_head.weight"].Value)[0] += 1
	if e := testutil.RelFrobenius(logitsOf(t, m), base); e == 0 {
		t.Error("changing the copies does not change the logits")
	}
	if e := testutil.RelFrobenius(m.Embed.Value.F64(), embed0); e != 0 {
		t.Error("the base embedding table changed")
	}
	Detach(m)
	if e := testutil.RelFrobenius(logitsOf(t, m), base); e != 0 {
		t.Errorf("detached model differs from the base by %.3g", e)
	}
}

// TestModulesToSavePEFTFileAndMerge: the copies are saved under PEFT's
// keys (get_peft_model_state_dict: the wrapper's name + the module's own
// parameter names, "base_model.model.lm_head.weight"), load back, and
// merge into the base so that the merged model computes the adapted one.
func TestModulesToSavePEFTFileAndMerge(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	a := toSaveAdapter(t, m, "embed_tokens", "lm_head")
	for _, name := range []string{"model.embed_tokens.weight", "lm_head.weight"} {
		d := tensor.F32Data(a.Params()[name].Value)
		for i := range d {
			d[i] += 0.01 * float32(i%5-2)
		}
	}
	for _, l := range a.Layers {
		tensor.F32Data(l.B.Value)[0] = 0.1
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	want := logitsOf(t, m)
	Detach(m)
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Join(f.Names(), " ")
	f.Close()
	for _, k := range []string{"base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight"} {
		if !strings.Contains(" "+names+" ", " "+k+" ") {
			t.Errorf("saved keys lack %s: %s", k, names)
		}
	}
	back, err := Load(m, dir, "back")
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Attach(m); err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelFrobenius(logitsOf(t, m), want); e > 1e-7 {
		t.Errorf("reloaded adapter differs by %.3g", e)
	}
	embed0 := m.Embed.Value.F64()
	if err := back.Merge(m); err != nil {
		t.Fatal(err)
	}
	Detach(m)
	if e := testutil.RelFrobenius(logitsOf(t, m), want); e > 1e-5 {
		t.Errorf("merged base differs from the adapted model by %.3g", e)
	}
	if err := back.Unmerge(m); err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelFrobenius(m.Embed.Value.F64(), embed0); e != 0 {
		t.Errorf("unmerge left the embeddings off by %.3g", e)
	}
	// A file whose copy has another shape (a resized vocabulary) is refused.
	c, w, _ := LoadAdapter(dir)
	emb := w["model.embed_tokens.weight"]
	emb.Shape[0]--
	emb.Data = emb.Data[:emb.Shape[0]*emb.Shape[1]]
	w["model.embed_tokens.weight"] = emb
	if err := SaveAdapter(dir, c, w); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(m, dir, "x"); !errors.Is(err, ErrAdapterMismatch) || !strings.Contains(err.Error(), "model.embed_tokens.weight") {
		t.Errorf("resized embeddings: %v", err)
	}
}

// TestModulesToSaveRefusals: what ftune does not implement is refused with
// the reason: one shared copy of tied embeddings (ensure_weight_tying),
// entries that match nothing or a whole block, copies of NF4 weights, and
// per-row routing of adapters with copies.
func TestModulesToSaveRefusals(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	for _, c := range []struct {
		entries []string
		want    error
		text    string
	}{
		{[]string{"embed_token"}, ErrInvalidConfig, "matches no module"},
		{[]string{"mlp"}, ErrUnsupported, "holds other modules"},
		{[]string{"norm"}, ErrInvalidConfig, "matches no module"},
	} {
		cfg := NewConfig(4, 8, "q_proj")
		cfg.ModulesToSave = c.entries
		if _, err := New(m, cfg, "x", 1); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%v: %v, want %v with %q", c.entries, err, c.want, c.text)
		}
	}
	tied := loadFixtureAt(t, "../testdata/fixtures/qwen2-tiny")
	cfg := NewConfig(4, 8, "q_proj")
	cfg.ModulesToSave = []string{"embed_tokens"}
	cfg.extra = map[string]json.RawMessage{"ensure_weight_tying": json.RawMessage("true")}
	if _, err := New(tied, cfg, "x", 1); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "ensure_weight_tying") {
		t.Errorf("tied copies with ensure_weight_tying: %v", err)
	}
	q := loadFixture(t, nn.LoadOptions{Quantize: nf4.Quantizer(tensor.CPUDefault())})
	cfg = NewConfig(4, 8, "q_proj")
	cfg.ModulesToSave = []string{"down_proj"}
	if _, err := New(q, cfg, "x", 1); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "NF4") {
		t.Errorf("copy of an NF4 linear: %v", err)
	}
	s := NewSubjectAdapterModel(m)
	if err := s.Add(toSaveAdapter(t, m, "lm_head")); err != nil {
		t.Fatal(err)
	}
	ids := tensor.FromHost(m.Backend, tensor.I64, []int64{5, 9}, 1, 2)
	if _, err := s.ForwardRouted(nil, nn.Batch{InputIDs: ids}, []string{"default"}, nn.ForwardOptions{}); err == nil || !strings.Contains(err.Error(), "modules_to_save") {
		t.Errorf("routed copies: %v", err)
	}
}

func loadFixtureAt(t *testing.T, dir string) *nn.Model {
	t.Helper()
	m, err := nn.Load(dir, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestModulesToSaveOnTiedEmbeddings: on a model whose lm_head is the
// embedding table, PEFT (ensure_weight_tying false, its default) trains
// separate copies of the listed ends and leaves the other on the base
// table; ftune does the same, and refuses to merge them in place (one
// tensor cannot hold two tables).
func TestModulesToSaveOnTiedEmbeddings(t *testing.T) {
	m := loadFixtureAt(t, "../testdata/fixtures/qwen2-tiny")
	m.SetTrainable(false)
	base := logitsOf(t, m)
	for _, entries := range [][]string{{"embed_tokens"}, {"lm_head"}, {"embed_tokens", "lm_head"}} {
		a := toSaveAdapter(t, m, entries...)
		if err := a.Attach(m); err != nil {
			t.Fatal(err)
		}
		if e := testutil.RelFrobenius(logitsOf(t, m), base); e != 0 {
			t.Errorf("%v: fresh copies change the logits by %.3g", entries, e)
		}
		// Move the copies; with both, the two ends now differ, as PEFT's
		// separate copies do.
		for _, c := range a.Copies {
			if c.Weight == m.Embed {
				t.Fatalf("%v: the copy of %s is the base table", entries, c.Module)
			}
			tensor.F32Data(c.Weight.Value)[5*m.Config.HiddenSize] += 0.5
		}
		moved := logitsOf(t, m)
		if e := testutil.RelFrobenius(moved, base); e == 0 {
			t.Errorf("%v: moving the copies does not change the logits", entries)
		}
		if err := a.Merge(m); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "tie_word_embeddings") {
			t.Errorf("%v: merging into a tied table: %v", entries, err)
		}
		Detach(m)
		if e := testutil.RelFrobenius(logitsOf(t, m), base); e != 0 {
			t.Errorf("%v: the base table changed (%.3g)", entries, e)
		}
	}
}
