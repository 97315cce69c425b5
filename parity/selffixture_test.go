package parity

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/tinymodels"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
	"github.com/ftune/ftune/tensor"
)

// The families of issue 13 have no transformers fixtures until a machine
// with transformers runs testdata/fixtures/make_fixtures.py (see the
// README there). TestFixturePlumbing proves, meanwhile, that TestParity's
// reading path handles each family's fixture layout: it writes a folder in
// make_fixtures.py's layout from ftune's own outputs on the family's tiny
// folder and runs runFixture on it. Its numbers agree by construction: it
// checks plumbing (file and tensor names, Phi-3's fused module names in
// grads_full, grads_lora and merged.safetensors, PEFT's target names and
// ".default" gradient keys, per-layer-type RoPE inputs, soft-capped logits
// and loss through every path), never parity. FTUNE_SELF_FIXTURES_DIR keeps
// the folders there, for FTUNE_FIXTURES=that go test ./parity -run
// '^TestParity$'.

// PEFT's module names for the LoRA targets (make_fixtures.py's TARGETS).
var (
	llamaLoRATargets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
	phiLoRATargets   = []string{"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
)

// selfFixtureFamilies: each family's tiny folder (by its tinymodels
// family) and what runFixture must check on it beyond the quantities every
// fixture has.
var selfFixtureFamilies = []struct {
	name, family string
	targets      []string
	dora         bool
	extra        []string
}{
	{"qwen3-tiny", "qwen3", llamaLoRATargets, false, nil},
	{"gemma2-tiny", "gemma2", llamaLoRATargets, false, nil},
	{"gemma3-tiny", "gemma3", llamaLoRATargets, false, []string{"inv_freq_sliding"}},
	{"phi3-tiny", "phi3", phiLoRATargets, false, nil},
	// DoRA's magnitude vectors under PEFT's keys, on fused modules
	{"phi3-tiny-dora", "phi3", phiLoRATargets, true, nil},
	{"phi4mini-tiny", "phi4mini", phiLoRATargets, false, nil},
}

// everyQuantity is what a complete make_fixtures.py folder lets runFixture
// check.
var everyQuantity = []string{"inv_freq", "attention_scaling", "grads_lora", "adamw", "merged", "logits", "hidden_states", "loss", "grads_full", "generate"}

func TestFixturePlumbing(t *testing.T) {
	root := os.Getenv("FTUNE_SELF_FIXTURES_DIR")
	if root == "" {
		root = t.TempDir()
	}
	for i, f := range selfFixtureFamilies {
		t.Run(f.name, func(t *testing.T) {
			dir := filepath.Join(root, f.name)
			cfg := lora.NewConfig(4, 8, f.targets...)
			cfg.UseDoRA = f.dora
			writeSelfFixture(t, tinymodels.Dir(t, f.family), dir, cfg, uint64(2026+i))
			ran := runFixture(t, dir)
			for _, q := range append(slices.Clone(everyQuantity), f.extra...) {
				if !slices.Contains(ran, q) {
					t.Errorf("%s: %s was not checked (ran %v)", f.name, q, ran)
				}
			}
		})
	}
}

// Batch and generation sizes of make_fixtures.py (SEQ_LEN, PROMPT_LEN,
// GEN_LEN, PAD_LEN).
const (
	selfSeqLen, selfPromptLen, selfGenLen, selfPadLen = 24, 8, 20, 5
)

// writeSelfFixture writes into dir what make_fixtures.py writes, computed
// by ftune: the base folder (copied from src), inputs, base outputs and
// gradients, greedy generation, a PEFT adapter of cfg (B drawn
// 0.05·N(0,1)) with its gradients under PEFT's keys, 5 AdamW steps, the
// adapter after them and the merged weights.
func writeSelfFixture(t *testing.T, src, dir string, cfg *lora.Config, seed uint64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config.json", "generation_config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	model, err := nn.Load(dir, nn.LoadOptions{Trainable: true})
	if err != nil {
		t.Fatal(err)
	}
	c := model.Config
	rng := rand.New(rand.NewPCG(seed, 13))
	const B, T = 2, selfSeqLen
	ids, mask, labels := make([]int64, B*T), make([]int64, B*T), make([]int64, B*T)
	for i := range ids {
		ids[i], mask[i] = 3+rng.Int64N(int64(c.VocabSize-3)), 1
	}
	for i := T - selfPadLen; i < T; i++ {
		ids[T+i], mask[T+i] = 0, 0
	}
	for i := range labels {
		labels[i] = ids[i]
		if i%T < selfPromptLen || mask[i] == 0 {
			labels[i] = nn.IgnoreIndex
		}
	}
	batch := func(m *nn.Model) nn.Batch {
		return nn.Batch{
			InputIDs:      tensor.FromHost(m.Backend, tensor.I64, ids, B, T),
			AttentionMask: tensor.FromHost(m.Backend, tensor.I64, mask, B, T),
			Labels:        tensor.FromHost(m.Backend, tensor.I64, labels, B, T),
		}
	}

	inputs := []safetensors.Tensor{i64Tensor("input_ids", ids, B, T), i64Tensor("attention_mask", mask, B, T), i64Tensor("labels", labels, B, T)}
	inv, scale := c.InvFreq(0)
	inputs = append(inputs, f64Tensor("inv_freq", inv, len(inv)), f64Tensor("attention_scaling", []float64{scale}, 1))
	if c.LocalRope != nil {
		lc := c
		lc.Rope = *c.LocalRope
		local, _ := lc.InvFreq(0)
		inputs = append(inputs, f64Tensor("inv_freq_sliding", local, len(local)))
	}

	tp := autograd.NewTape()
	out, err := model.Forward(tp, batch(model), nn.ForwardOptions{KeepHidden: true})
	if err != nil {
		t.Fatal(err)
	}
	base := []safetensors.Tensor{varTensor("logits", out.Logits.Value), f64Tensor("loss", []float64{out.Loss.Value.Item()}, 1)}
	for i, h := range out.Hidden {
		base = append(base, varTensor("hidden_states."+strconv.Itoa(i), h.Value))
	}
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	var grads []safetensors.Tensor
	for name, p := range model.Params() {
		grads = append(grads, varTensor(name, p.Grad))
	}

	prompt := make([]int, selfPromptLen)
	for i := range prompt {
		prompt[i] = int(ids[i])
	}
	gen, err := model.Generate(prompt, nn.GenerateOptions{MaxNewTokens: selfGenLen - selfPromptLen})
	if err != nil {
		t.Fatal(err)
	}
	full := make([]int64, 0, selfGenLen)
	for _, v := range append(slices.Clone(prompt), gen...) {
		full = append(full, int64(v))
	}
	inputs = append(inputs, i64Tensor("generate_prompt", full[:selfPromptLen], 1, selfPromptLen), i64Tensor("generate_output", full, 1, len(full)))
	writeTensors(t, filepath.Join(dir, "inputs.safetensors"), inputs)
	writeTensors(t, filepath.Join(dir, "outputs_base.safetensors"), base)
	writeTensors(t, filepath.Join(dir, "grads_full.safetensors"), grads)

	// The adapter, as PEFT saves it: no base record, B non-zero.
	lm, err := nn.Load(dir, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := lora.New(lm, cfg, "default", seed)
	if err != nil {
		t.Fatal(err)
	}
	a.Base = lora.Base{}
	for name, p := range a.Params() {
		if strings.Contains(name, ".lora_B.") {
			for i, d := 0, tensor.F32Data(p.Value); i < len(d); i++ {
				d[i] = float32(0.05 * rng.NormFloat64())
			}
		}
	}
	if err := a.Save(filepath.Join(dir, "adapter_init")); err != nil {
		t.Fatal(err)
	}
	if err := a.Attach(lm); err != nil {
		t.Fatal(err)
	}
	tp = autograd.NewTape()
	lout, err := lm.Forward(tp, batch(lm), nn.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lo := []safetensors.Tensor{varTensor("logits", lout.Logits.Value), f64Tensor("loss", []float64{lout.Loss.Value.Item()}, 1)}
	if err := tp.Backward(lout.Loss); err != nil {
		t.Fatal(err)
	}
	var lgrads []safetensors.Tensor
	for name, p := range a.Params() {
		// PEFT's parameter names: the saved prefix, the adapter name
		// before the last component.
		key := "base_model.model." + strings.TrimSuffix(name, ".weight") + ".default.weight"
		lgrads = append(lgrads, varTensor(key, p.Grad))
		p.ZeroGrad()
	}
	writeTensors(t, filepath.Join(dir, "grads_lora.safetensors"), lgrads)

	adamw := optim.AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	opt, err := optim.NewAdamW(adamw)
	if err != nil {
		t.Fatal(err)
	}
	var losses []float64
	for range 5 {
		tp := autograd.NewTape()
		o, err := lm.Forward(tp, batch(lm), nn.ForwardOptions{LossOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, o.Loss.Value.Item())
		if err := tp.Backward(o.Loss); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(bindParams(a.Params())); err != nil {
			t.Fatal(err)
		}
		for _, v := range a.Params() {
			v.ZeroGrad()
		}
	}
	lo = append(lo, f64Tensor("adamw_losses", losses, len(losses)))
	writeTensors(t, filepath.Join(dir, "outputs_lora.safetensors"), lo)
	if err := a.Save(filepath.Join(dir, "adapter_after")); err != nil {
		t.Fatal(err)
	}

	mm, err := nn.Load(dir, nn.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := lora.Load(mm, filepath.Join(dir, "adapter_after"), "default")
	if err != nil {
		t.Fatal(err)
	}
	if err := after.Merge(mm); err != nil {
		t.Fatal(err)
	}
	var merged []safetensors.Tensor
	for name, p := range mm.Params() {
		merged = append(merged, varTensor(name, p.Value))
	}
	writeTensors(t, filepath.Join(dir, "merged.safetensors"), merged)

	meta := map[string]any{
		"name":         filepath.Base(dir),
		"provenance":   "ftune's own outputs (parity/selffixture_test.go): checks TestParity's reading path, not parity",
		"adamw":        map[string]any{"lr": adamw.LR, "betas": []float64{adamw.Beta1, adamw.Beta2}, "eps": adamw.Eps, "weight_decay": 0.0},
		"adamw_losses": losses,
		"lora":         map[string]any{"r": cfg.R, "alpha": cfg.LoraAlpha, "init_B": "0.05*randn", "target_modules": cfg.TargetModules, "use_dora": cfg.UseDoRA},
	}
	b, err := json.MarshalIndent(meta, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTensors(t *testing.T, path string, ts []safetensors.Tensor) {
	t.Helper()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	if err := safetensors.Write(path, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// varTensor is a float32 tensor's values as a safetensors F32 tensor.
func varTensor(name string, v *tensor.Tensor) safetensors.Tensor {
	f := v.F32()
	data := make([]byte, 4*len(f))
	for i, x := range f {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: v.Shape().Clone(), Data: data}
}

func f64Tensor(name string, v []float64, shape ...int) safetensors.Tensor {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(x)))
	}
	return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: data}
}

func i64Tensor(name string, v []int64, shape ...int) safetensors.Tensor {
	data := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(x))
	}
	return safetensors.Tensor{Name: name, DType: safetensors.I64, Shape: shape, Data: data}
}
