package parity

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// Tolerances (float32 on the CPU against transformers' float32 on the CPU).
// Both sides round differently inside GEMMs and reductions (different
// summation orders), which leaves ~1e-6 relative per op; through a few
// layers that stays well under 1e-5, so 1e-4 on activations and the loss
// leaves a margin without hiding a wrong term (a missing bias or a shifted
// RoPE moves these by >1e-2). Gradients pass through more ops and cancel
// more (sums of terms of both signs), so they get 1e-3.
const (
	tolActivations = 1e-4
	tolGrad        = 1e-3
)

type fixture struct {
	dir    string
	files  map[string]*safetensors.File
	inputs *safetensors.File
	// ran lists the quantities checked (not skipped for want of a file).
	ran []string
}

// quantity runs fn as the subtest name when the fixture has what it needs,
// and otherwise skips it, naming what is missing.
func (f *fixture) quantity(t *testing.T, name string, present bool, fn func(t *testing.T)) {
	t.Helper()
	if present {
		f.ran = append(f.ran, name)
	}
	t.Run(name, func(t *testing.T) {
		if !present {
			t.Skipf("%s: fixture has no %s", filepath.Base(f.dir), name)
		}
		fn(t)
	})
}

// modelDir is the folder that holds dir's base model: dir itself, or, for
// a LoRA variant folder (make_fixtures.py's VARIANTS store no copy of the
// base), the sibling folder its meta.json names as "base".
func modelDir(t testing.TB, dir string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		return dir
	}
	raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatalf("%s: no model.safetensors, and no meta.json to name a base folder (%v)", dir, err)
	}
	var meta struct {
		Base string `json:"base"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("%s/meta.json: %v", dir, err)
	}
	if meta.Base == "" || meta.Base != filepath.Base(meta.Base) || meta.Base == ".." {
		t.Fatalf("%s: no model.safetensors, and meta.json's base %q does not name a sibling folder", dir, meta.Base)
	}
	return filepath.Join(filepath.Dir(dir), meta.Base)
}

func openFixture(t *testing.T, dir string) *fixture {
	t.Helper()
	f := &fixture{dir: dir, files: map[string]*safetensors.File{}}
	in, err := safetensors.Open(filepath.Join(dir, "inputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	f.inputs = in
	t.Cleanup(func() { in.Close() })
	return f
}

// file opens name once; ok is false when the fixture lacks it.
func (f *fixture) file(t *testing.T, name string) (*safetensors.File, bool) {
	t.Helper()
	if h, ok := f.files[name]; ok {
		return h, true
	}
	p := filepath.Join(f.dir, name)
	if _, err := os.Stat(p); err != nil {
		return nil, false
	}
	h, err := safetensors.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	f.files[name] = h
	return h, true
}

func floats(t *testing.T, f *safetensors.File, name string) []float64 {
	t.Helper()
	st, err := f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := safetensors.Floats(st)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.F64(v)
}

func ints(t *testing.T, f *safetensors.File, name string) ([]int64, []int) {
	t.Helper()
	st, err := f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := safetensors.Ints(st)
	if err != nil {
		t.Fatal(err)
	}
	return v, st.Shape
}

func report(t *testing.T, what string, err, tol float64) {
	t.Helper()
	t.Logf("worst relative error %-28s %.3g (tolerance %g)", what, err, tol)
	if !(err <= tol) {
		t.Errorf("%s: relative error %.3g > %g", what, err, tol)
	}
}

func TestParity(t *testing.T) {
	dirs := testutil.Folders("../testdata/fixtures", "inputs.safetensors", "FTUNE_FIXTURES")
	if len(dirs) == 0 {
		t.Fatal("no fixture folders found under testdata/fixtures")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ran := runFixture(t, dir)
			// A folder make_fixtures.py writes has every quantity; a LoRA
			// variant's base outputs and full gradients are its base
			// folder's. A quantity skipped for want of a file fails here.
			want := []string{"inv_freq", "grads_lora", "adamw", "merged", "generate"}
			if modelDir(t, dir) == dir {
				want = append(want, "logits", "hidden_states", "loss", "grads_full")
			}
			for _, q := range want {
				if !slices.Contains(ran, q) {
					t.Errorf("%s: %s was not checked (the folder lacks what it needs)", filepath.Base(dir), q)
				}
			}
		})
	}
}

// checkRopeInputs compares the RoPE a freshly built transformers model
// holds (make_fixtures.py saves it before any forward could switch a
// dynamic RoPE such as LongRoPE to its long factors) with the config's:
// inv_freq (the global layers' when the model keeps one per layer type, as
// Gemma 3 does), inv_freq_sliding (the local layers': Gemma 3's own base,
// or the global RoPE when the family has a single one) and
// attention_scaling (LongRoPE's and YaRN's factor on cos and sin).
func checkRopeInputs(t *testing.T, fx *fixture, c nn.Config) {
	global, scale := c.InvFreq(0)
	fx.quantity(t, "inv_freq", fx.inputs.Has("inv_freq"), func(t *testing.T) {
		report(t, "inv_freq", testutil.RelFrobenius(global, floats(t, fx.inputs, "inv_freq")), 1e-6)
	})
	if fx.inputs.Has("inv_freq_sliding") {
		fx.quantity(t, "inv_freq_sliding", true, func(t *testing.T) {
			local := global
			if c.LocalRope != nil {
				lc := c
				lc.Rope = *c.LocalRope
				local, _ = lc.InvFreq(0)
			}
			report(t, "inv_freq_sliding", testutil.RelFrobenius(local, floats(t, fx.inputs, "inv_freq_sliding")), 1e-6)
		})
	}
	if fx.inputs.Has("attention_scaling") {
		fx.quantity(t, "attention_scaling", true, func(t *testing.T) {
			report(t, "attention_scaling", testutil.RelFrobenius([]float64{scale}, floats(t, fx.inputs, "attention_scaling")), 1e-6)
		})
	}
}

// runFixture checks every quantity the fixture folder holds and returns the
// names of those it checked.
func runFixture(t *testing.T, dir string) []string {
	fx := openFixture(t, dir)
	model, err := nn.Load(modelDir(t, dir), nn.LoadOptions{Trainable: true})
	if err != nil {
		t.Fatal(err)
	}
	be := model.Backend
	ids, idShape := ints(t, fx.inputs, "input_ids")
	B, T := idShape[0], idShape[1]
	batch := nn.Batch{InputIDs: tensor.FromHost(be, tensor.I64, ids, B, T)}
	if fx.inputs.Has("attention_mask") {
		m, _ := ints(t, fx.inputs, "attention_mask")
		batch.AttentionMask = tensor.FromHost(be, tensor.I64, m, B, T)
	}
	if fx.inputs.Has("labels") {
		l, _ := ints(t, fx.inputs, "labels")
		batch.Labels = tensor.FromHost(be, tensor.I64, l, B, T)
	}
	checkRopeInputs(t, fx, model.Config)

	tp := autograd.NewTape()
	out, err := model.Forward(tp, batch, nn.ForwardOptions{KeepHidden: true})
	if err != nil {
		t.Fatal(err)
	}
	runLoRA(t, fx, func(m *nn.Model) nn.Batch {
		b := batch
		b.InputIDs = tensor.FromHost(m.Backend, tensor.I64, ids, B, T)
		return b
	})
	base, haveBase := fx.file(t, "outputs_base.safetensors")
	quantity := func(name string, present bool, fn func(t *testing.T)) { fx.quantity(t, name, present, fn) }
	quantity("logits", haveBase && base.Has("logits"), func(t *testing.T) {
		report(t, "logits", testutil.RelFrobenius(out.Logits.Value.F64(), floats(t, base, "logits")), tolActivations)
	})
	quantity("hidden_states", haveBase && base.Has("hidden_states.0"), func(t *testing.T) {
		if len(out.Hidden) != model.Config.NumLayers+1 {
			t.Fatalf("%d hidden states, want %d", len(out.Hidden), model.Config.NumLayers+1)
		}
		worst := 0.0
		for i, h := range out.Hidden {
			e := testutil.RelFrobenius(h.Value.F64(), floats(t, base, fmt.Sprintf("hidden_states.%d", i)))
			if e > worst || e != e {
				worst = e
			}
		}
		report(t, "hidden_states (worst layer)", worst, tolActivations)
	})
	quantity("loss", haveBase && base.Has("loss") && batch.Labels != nil, func(t *testing.T) {
		want := floats(t, base, "loss")
		report(t, "loss", testutil.RelFrobenius([]float64{out.Loss.Value.Item()}, want), tolActivations)
	})
	grads, haveGrads := fx.file(t, "grads_full.safetensors")
	quantity("grads_full", haveGrads && out.Loss != nil, func(t *testing.T) {
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		params := model.Params()
		worst, worstName := 0.0, ""
		for _, name := range grads.Names() {
			p, ok := params[name]
			if !ok {
				t.Errorf("fixture has a gradient for %q, which the model does not have", name)
				continue
			}
			if p.Grad == nil {
				t.Errorf("%s: no gradient", name)
				continue
			}
			e := testutil.RelFrobenius(p.Grad.F64(), floats(t, grads, name))
			if e > worst || e != e {
				worst, worstName = e, name
			}
		}
		if len(grads.Names()) != len(params) {
			t.Errorf("fixture has %d gradients, model %d parameters", len(grads.Names()), len(params))
		}
		report(t, "grads_full ("+strings.TrimPrefix(worstName, "model.")+")", worst, tolGrad)
	})
	quantity("generate", fx.inputs.Has("generate_prompt") && fx.inputs.Has("generate_output"), func(t *testing.T) {
		prompt, _ := ints(t, fx.inputs, "generate_prompt")
		want, _ := ints(t, fx.inputs, "generate_output")
		p := make([]int, len(prompt))
		for i, v := range prompt {
			p[i] = int(v)
		}
		got, err := model.Generate(p, nn.GenerateOptions{MaxNewTokens: len(want) - len(prompt)})
		if err != nil {
			t.Fatal(err)
		}
		full := append(p, got...)
		for i := range want {
			if i >= len(full) || int64(full[i]) != want[i] {
				t.Fatalf("greedy tokens differ at %d:\n got %v\nwant %v", i, full, want)
			}
		}
		t.Logf("greedy generation: %d/%d tokens identical", len(want), len(want))
	})
	return fx.ran
}
