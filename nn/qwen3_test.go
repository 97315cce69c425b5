package nn

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// qwen3Config is a small Qwen3 whose head_dim (12) is not hidden/heads (8).
const qwen3Config = `{"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "vocab_size": 40, "hidden_size": 32,
 "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 12,
 "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}, "tie_word_embeddings": true}`

// qsizes is sizes with a KV head count that divides its 4 heads (Qwen3's
// default is 32).
const qsizes = sizes + `, "num_key_value_heads": 2`

// TestQwen3Config: Qwen3Config's defaults (head_dim 128 when absent, 32 KV
// heads, no bias, no window), attention_bias on all four projections,
// Qwen2's sliding-window rules, and q/k norms always on.
func TestQwen3Config(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type": "qwen3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 3, "num_attention_heads": 64}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 128 || c.NumKVHeads != 32 || !c.QKNorm || c.AttentionBias || c.OutputBias || c.MLPBias || c.SlidingWindow != 0 || c.TieEmbeddings || c.MaxPositions != 32768 || c.BOSTokenID != -1 || c.EOSTokenIDs != nil {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ParseConfig([]byte(`{"model_type": "qwen3", ` + qsizes + `, "head_dim": 8, "attention_bias": true, "mlp_bias": true, "use_sliding_window": true, "sliding_window": 16, "max_window_layers": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.AttentionBias || !c.OutputBias || c.MLPBias || c.HeadDim != 8 || c.SlidingWindow != 16 || c.SlidingLayers[0] || !c.SlidingLayers[1] {
		t.Fatalf("biases / window: %+v", c)
	}
	c, err = ParseConfig([]byte(`{"architectures": ["Qwen3ForCausalLM"], ` + qsizes + `, "sliding_window": 16}`))
	if err != nil || c.ModelType != "qwen3" || c.SlidingWindow != 0 {
		t.Fatalf("architecture fallback, window without use_sliding_window: %+v, %v", c, err)
	}
}

// TestQwen3HubConfig reads Qwen3-0.6B's config.json as published
// (transformers v4 layout: rope_theta at the top, torch_dtype).
func TestQwen3HubConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024,
  "initializer_range": 0.02, "intermediate_size": 3072, "max_position_embeddings": 40960, "max_window_layers": 28,
  "model_type": "qwen3", "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false, "vocab_size": 151936}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 128 || c.NumHeads*c.HeadDim != 2048 || c.NumKVHeads != 8 || !c.QKNorm || !c.TieEmbeddings || c.Rope.Theta != 1e6 ||
		c.Rope.Type != "default" || c.SlidingWindow != 0 || c.BOSTokenID != 151643 || len(c.EOSTokenIDs) != 1 || c.EOSTokenIDs[0] != 151645 || c.AttentionBias {
		t.Fatalf("Qwen3-0.6B read as %+v", c)
	}
}

// TestQwen3ConfigRefusals names the key of every Qwen3 config ftune cannot
// compute as Qwen3ForCausalLM does.
func TestQwen3ConfigRefusals(t *testing.T) {
	for extra, want := range map[string]string{
		`"head_dim": null`:         "head_dim is null",
		`"use_qk_norm": false`:     "use_qk_norm",
		`"num_experts": 8`:         "num_experts",
		`"attn_output_gate": true`: "attn_output_gate",
		`"mlp_only_layers": []`:    "mlp_only_layers",
		`"layer_types": ["linear_attention", "full_attention", "full_attention"]`: "linear_attention",
	} {
		_, err := ParseConfig([]byte(`{"model_type": "qwen3", ` + qsizes + `, ` + extra + `}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming %q", extra, err, want)
		}
	}
	if _, err := ParseConfig([]byte(`{"model_type": "qwen3", ` + qsizes + `, "use_qk_norm": true, "attn_output_gate": false}`)); err != nil {
		t.Errorf("settings that agree with Qwen3 must load: %v", err)
	}
	if _, err := ParseConfig([]byte(`{"model_type": "qwen3", ` + qsizes + `, "num_experts": 8}`)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("mixture of experts: %v, want ErrUnsupported", err)
	}
}

// TestQwen3LoadNeedsHeadNorms: the q/k norm weights are required, with the
// head_dim shape, and a qwen2 config refuses them as unknown.
func TestQwen3LoadNeedsHeadNorms(t *testing.T) {
	ws := randomWeights(t, qwen3Config, 1)
	for i := 0; i < len(ws); i++ {
		if ws[i].Name == "model.layers.1.self_attn.k_norm.weight" {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	_, err := Load(writeFolder(t, qwen3Config, ws), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "model.layers.1.self_attn.k_norm.weight") || !strings.Contains(err.Error(), "[12]") {
		t.Fatalf("missing k_norm: %v", err)
	}
	qwen2 := strings.Replace(strings.Replace(qwen3Config, `"qwen3"`, `"qwen2"`, 1), "Qwen3ForCausalLM", "Qwen2ForCausalLM", 1)
	ws = randomWeights(t, qwen3Config, 1)
	for _, w := range randomWeights(t, qwen2, 1) {
		if strings.HasSuffix(w.Name, "_proj.bias") {
			ws = append(ws, w)
		}
	}
	_, err = Load(writeFolder(t, qwen2, ws), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "q_norm") {
		t.Fatalf("qwen2 config with q_norm weights: %v", err)
	}
}

// TestQwen3HeadNormsMatter: q_norm and k_norm are used, per head over
// head_dim, before RoPE: the logits move when either weight changes, and
// scaling a head's query rows before the norm changes nothing (the norm
// removes it), which it would not if the norm were missing or ran over the
// whole hidden row.
func TestQwen3HeadNormsMatter(t *testing.T) {
	ids := [][]int{{3, 17, 5, 39, 8, 21, 0, 11}}
	m := loadRandom(t, qwen3Config, 2)
	base := logits(t, m, ids, nil)
	for _, w := range []*autograd.Var{m.Layers[0].QNorm, m.Layers[1].KNorm} {
		setValues(w, func(v []float64) { v[3] += 0.5 })
		moved := logits(t, m, ids, nil)
		setValues(w, func(v []float64) { v[3] -= 0.5 })
		if d := maxDiff(moved[0][7], base[0][7]); d < 1e-3 {
			t.Errorf("%s: changing one weight moved the last logits by %g", w.Name, d)
		}
	}
	// Scale head 2's rows of q_proj in layer 0 by 7: RMSNorm over head_dim
	// is scale-invariant (up to eps), so the logits stay.
	H, D := m.Config.HiddenSize, m.Config.HeadDim
	setValues(m.Layers[0].Attn.Q.Weight, func(q []float64) {
		for i := 2 * D * H; i < 3*D*H; i++ {
			q[i] *= 7
		}
	})
	scaled := logits(t, m, ids, nil)
	for p := range ids[0] {
		if d := maxDiff(scaled[0][p], base[0][p]); d > 1e-4 {
			t.Fatalf("position %d: scaling one head's query moved the logits by %g; want the per-head norm to remove it", p, d)
		}
	}
}

// TestQwen3HeadNormGradients: the analytic gradient of the loss with
// respect to q_norm, k_norm and q_proj (through the per-head RMSNorm and
// RoPE) agrees with central finite differences in float64.
func TestQwen3HeadNormGradients(t *testing.T) {
	checkGradients(t, qwen3Config, func(m *Model) []gradProbe {
		return []gradProbe{{m.Layers[0].QNorm, []int{0, 5, 11}}, {m.Layers[1].KNorm, []int{1, 7}}, {m.Layers[0].Attn.Q.Weight, []int{0, 400, 1000}}, {m.Layers[0].Attn.K.Weight, []int{33, 700}}}
	})
}

// gradProbe is a parameter and the flat indices where checkGradients
// compares autograd with finite differences.
type gradProbe struct {
	w   *autograd.Var
	idx []int
}

// checkGradients loads a random float64 model of cfgJSON and compares the
// loss's gradient from autograd with central finite differences (step
// 1e-5, so the float64 truncation error is about 1e-10 and the bound
// 1e-6 + 1e-5·|fd| leaves room only for real disagreements) at the probes.
func checkGradients(t *testing.T, cfgJSON string, probes func(*Model) []gradProbe) {
	t.Helper()
	m, err := Load(writeFolder(t, cfgJSON, randomWeights(t, cfgJSON, 3)), LoadOptions{DType: tensor.F64, Trainable: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{3, 17, 5, 39, 8, 21, 0, 11, 2, 30}
	batch := Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids)), Labels: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))}
	loss := func() float64 {
		out, err := m.Forward(nil, batch, ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Loss.Value.Item()
	}
	tp := autograd.NewTape()
	out, err := m.Forward(tp, batch, ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Backward(out.Loss); err != nil {
		t.Fatal(err)
	}
	const h = 1e-5
	for _, c := range probes(m) {
		g := c.w.Grad.F64()
		for _, i := range c.idx {
			setValues(c.w, func(v []float64) { v[i] += h })
			up := loss()
			setValues(c.w, func(v []float64) { v[i] -= 2 * h })
			down := loss()
			setValues(c.w, func(v []float64) { v[i] += h })
			fd := (up - down) / (2 * h)
			if math.Abs(fd-g[i]) > 1e-6+1e-5*math.Abs(fd) {
				t.Errorf("%s[%d]: autograd %.9g, finite difference %.9g", c.w.Name, i, g[i], fd)
			}
		}
	}
}

// setValues edits a parameter's values in place (through a host copy).
func setValues(w *autograd.Var, edit func([]float64)) {
	v := w.Value.F64()
	edit(v)
	src := tensor.FromHost(w.Value.Backend(), tensor.F64, v, w.Value.Shape()...)
	w.Value.CopyFrom(src.To(w.Value.DType()))
}

// TestQwen3GenerateWithCache: greedy generation through the KV cache (keys
// cached after their norm and RoPE) picks the tokens that full forward
// passes over the growing sequence pick.
func TestQwen3GenerateWithCache(t *testing.T) { checkCachedGeneration(t, qwen3Config) }

// checkCachedGeneration: greedy generation through the KV cache on a
// random model of cfgJSON picks the tokens full forward passes over the
// growing sequence pick (6 tokens after a 4-token prompt).
func checkCachedGeneration(t *testing.T, cfgJSON string) {
	t.Helper()
	m := loadRandom(t, cfgJSON, 4)
	prompt := []int{3, 17, 5, 39}
	got, err := m.Generate(prompt, GenerateOptions{MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	seq := append([]int(nil), prompt...)
	for len(seq) < len(prompt)+len(got) {
		l := logits(t, m, [][]int{seq}, nil)
		seq = append(seq, argmax(l[0][len(seq)-1]))
	}
	for i, id := range got {
		if seq[len(prompt)+i] != id {
			t.Fatalf("cached generation %v, full passes %v", got, seq[len(prompt):])
		}
	}
	if len(got) != 6 {
		t.Fatalf("%d tokens generated, want 6 (no stop token in this config)", len(got))
	}
}
