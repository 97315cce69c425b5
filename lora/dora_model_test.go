package lora

import (
	"encoding/json"
	"math"
	"os"
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

func loadFixture(t *testing.T, opt nn.LoadOptions) *nn.Model {
	t.Helper()
	m, err := nn.Load(fixture, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func doraAdapter(t *testing.T, m *nn.Model, randomB bool) *Adapter {
	t.Helper()
	c := NewConfig(4, 8, "q_proj", "v_proj", "down_proj")
	c.UseDoRA = true
	if randomB {
		c.InitLoraWeights = InitLoraWeights{Bool: false}
	}
	a, err := New(m, c, "default", 9)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func logitsOf(t *testing.T, m *nn.Model) []float64 {
	t.Helper()
	ids := tensor.FromHost(m.Backend, tensor.I64, []int64{5, 9, 2, 7, 100, 3}, 2, 3)
	out, err := m.Forward(nil, nn.Batch{InputIDs: ids}, nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Logits.Value.F64()
}

func rowNormsOf(w []float64, out, in int) []float64 {
	n := make([]float64, out)
	for o := range n {
		for i := 0; i < in; i++ {
			n[o] += w[o*in+i] * w[o*in+i]
		}
		n[o] = math.Sqrt(n[o])
	}
	return n
}

// TestDoRAInitIsTheBaseModel: with B = 0 the magnitude starts at the row
// norms of W (PEFT's update_layer), so the adapted model computes the base
// model; an NF4 base gives the norms of its dequantized weight.
func TestDoRAInitIsTheBaseModel(t *testing.T) {
	for _, q := range []bool{false, true} {
		opt := nn.LoadOptions{}
		if q {
			opt.Quantize = nf4.Quantizer(tensor.CPUDefault())
		}
		m := loadFixture(t, opt)
		base := logitsOf(t, m)
		a := doraAdapter(t, m, false)
		for _, mod := range a.Modules() {
			l := a.Layers[mod]
			if l.Magnitude == nil || l.Magnitude.Name != mod+".lora_magnitude_vector" || !l.Magnitude.RequiresGrad() {
				t.Fatalf("%s: magnitude %v", mod, l.Magnitude)
			}
			var w *tensor.Tensor
			for _, lin := range m.Linears() {
				if lin.Name == mod {
					w = lin.Weight.Value
				}
			}
			if q && w.DType() != tensor.NF4 {
				t.Fatalf("%s is %v, want NF4", mod, w.DType())
			}
			want := rowNormsOf(w.To(tensor.F32).F64(), w.Dim(0), w.Dim(1))
			if e := testutil.RelFrobenius(l.Magnitude.Value.F64(), want); e > 1e-6 {
				t.Errorf("nf4=%v %s: magnitude differs from the row norms of W by %.3g", q, mod, e)
			}
		}
		if err := a.Attach(m); err != nil {
			t.Fatal(err)
		}
		if e := testutil.RelFrobenius(logitsOf(t, m), base); e > 1e-6 {
			t.Errorf("nf4=%v: a fresh DoRA adapter changes the logits by %.3g", q, e)
		}
	}
}

// perturb moves every magnitude away from its norm so that m/n ≠ 1.
func perturb(a *Adapter) {
	for _, l := range a.Layers {
		d := tensor.F32Data(l.Magnitude.Value)
		for i := range d {
			d[i] *= 1 + 0.05*float32(i%7-3)
		}
	}
}

// TestDoRAMergeEqualsForward: merging writes (m/n)·(W + s·B·A) into the
// base, which then computes what the unmerged adapter computed, and
// unmerging restores W.
func TestDoRAMergeEqualsForward(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	orig := m.Layers[0].Attn.Q.Weight.Value.F64()
	a := doraAdapter(t, m, true)
	perturb(a)
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	want := logitsOf(t, m)
	if e := testutil.RelFrobenius(want, func() []float64 { Detach(m); defer a.Attach(m); return logitsOf(t, m) }()); e < 1e-3 {
		t.Fatalf("the adapter hardly changes the logits (%.3g): the test cannot tell", e)
	}
	if err := a.Merge(m); err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelFrobenius(logitsOf(t, m), want); e > 1e-5 {
		t.Errorf("merged logits differ from the unmerged forward by %.3g", e)
	}
	Detach(m)
	if e := testutil.RelFrobenius(logitsOf(t, m), want); e > 1e-5 {
		t.Errorf("the merged base alone differs from the adapted forward by %.3g", e)
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	if err := a.Unmerge(m); err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelFrobenius(m.Layers[0].Attn.Q.Weight.Value.F64(), orig); e > 1e-6 {
		t.Errorf("unmerge left q_proj off by %.3g", e)
	}
	if e := testutil.RelFrobenius(logitsOf(t, m), want); e > 1e-5 {
		t.Errorf("after unmerge the forward differs by %.3g", e)
	}
}

// TestDoRAPEFTFileRoundTrip: the adapter file holds PEFT's exact keys (the
// magnitude saved as "<module>.lora_magnitude_vector", no ".weight") and
// adapter_config.json says use_dora; loading it back gives the same model,
// also from a file written with a live PeftModel's names.
func TestDoRAPEFTFileRoundTrip(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	a := doraAdapter(t, m, true)
	perturb(a)
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, k := range f.Names() {
		keys[k] = true
	}
	f.Close()
	for _, k := range []string{
		"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
		"base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector",
		"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
	} {
		if !keys[k] {
			t.Errorf("saved file lacks %s (has %d keys)", k, len(keys))
		}
	}
	if n := len(keys); n != 3*len(a.Layers) {
		t.Errorf("%d keys for %d DoRA layers, want 3 each", n, len(a.Layers))
	}
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg["use_dora"] != true {
		t.Fatalf("adapter_config.json use_dora = %v (%v)", cfg["use_dora"], err)
	}
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	want := logitsOf(t, m)
	Detach(m)
	back, err := Load(m, dir, "back")
	if err != nil {
		t.Fatal(err)
	}
	if !back.Config.UseDoRA {
		t.Fatal("use_dora lost on load")
	}
	if err := back.Attach(m); err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelFrobenius(logitsOf(t, m), want); e > 1e-7 {
		t.Errorf("reloaded DoRA adapter differs by %.3g", e)
	}
	Detach(m)
	// A live PeftModel's parameter names (gradient dumps, transformers'
	// integration) read to the same tensors.
	w, err := ReadWeights(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for name, v := range w {
		key := SavedKey(name)
		if strings.HasSuffix(name, PartMagnitude) {
			key += ".default.weight"
		}
		b := make([]byte, 4*len(v.Data))
		for i, x := range v.Data {
			bits := math.Float32bits(x)
			b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
		}
		ts = append(ts, safetensors.Tensor{Name: key, DType: safetensors.F32, Shape: v.Shape, Data: b})
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), ts, nil); err != nil {
		t.Fatal(err)
	}
	live, err := Load(m, dir, "live")
	if err != nil {
		t.Fatal(err)
	}
	if e := testutil.RelFrobenius(live.Layers["model.layers.0.self_attn.q_proj"].Magnitude.Value.F64(),
		a.Layers["model.layers.0.self_attn.q_proj"].Magnitude.Value.F64()); e != 0 {
		t.Errorf("magnitude read from live names differs by %.3g", e)
	}
}

// TestDoRAFileWithoutMagnitudeIsRefused: use_dora with no magnitude
// tensor (or a magnitude without use_dora) does not load.
func TestDoRAFileWithoutMagnitudeIsRefused(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	a := doraAdapter(t, m, false)
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	c, w, err := LoadAdapter(dir)
	if err != nil {
		t.Fatal(err)
	}
	delete(w, MagnitudeName("model.layers.0.self_attn.q_proj"))
	if err := SaveAdapter(dir, c, w); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(m, dir, "x"); err == nil || !strings.Contains(err.Error(), "missing: model.layers.0.self_attn.q_proj.lora_magnitude_vector") {
		t.Errorf("missing magnitude: %v", err)
	}
	c.UseDoRA = false
	if err := SaveAdapter(dir, c, w); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(m, dir, "x"); err == nil || !strings.Contains(err.Error(), "unexpected: model.layers.0.mlp.down_proj.lora_magnitude_vector") {
		t.Errorf("magnitude without use_dora: %v", err)
	}
}

// TestDoRATrainingLowersTheLoss: a few plain gradient steps on A, B and the
// magnitude lower the loss on a fixed batch, and the magnitude moves.
func TestDoRATrainingLowersTheLoss(t *testing.T) {
	m := loadFixture(t, nn.LoadOptions{})
	m.SetTrainable(false)
	a := doraAdapter(t, m, false)
	if err := a.Attach(m); err != nil {
		t.Fatal(err)
	}
	ids := tensor.FromHost(m.Backend, tensor.I64, []int64{5, 9, 2, 7, 100, 3, 17, 42, 5, 9, 2, 7}, 2, 6)
	m0 := a.Layers["model.layers.0.self_attn.q_proj"].Magnitude.Value.F64()
	var first, last float64
	for step := 0; step < 8; step++ {
		tp := autograd.NewTape()
		out, err := m.Forward(tp, nn.Batch{InputIDs: ids, Labels: ids}, nn.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		loss := out.Loss.Value.Item()
		if step == 0 {
			first = loss
		}
		last = loss
		for _, p := range a.Params() {
			if p.Grad == nil {
				t.Fatalf("%s got no gradient", p.Name)
			}
			d, g := tensor.F32Data(p.Value), p.Grad.F32()
			for i := range d {
				d[i] -= 0.05 * g[i]
			}
			p.ZeroGrad()
		}
	}
	if !(last < first-0.05) {
		t.Errorf("loss %v -> %v: DoRA training does not lower it", first, last)
	}
	if e := testutil.RelFrobenius(a.Layers["model.layers.0.self_attn.q_proj"].Magnitude.Value.F64(), m0); e == 0 {
		t.Error("the magnitude did not train")
	}
}
