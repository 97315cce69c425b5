package nn

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// gemma2Config is a small Gemma 2: 4 layers in Gemma2Config's default
// alternation (no layer_types: local, global, local, global; window 3),
// head_dim 12 ≠ hidden/heads, a query_pre_attn_scalar that is not
// head_dim, GQA, and soft-caps small enough to bend these random scores
// and logits.
const gemma2Config = `{"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "vocab_size": 40, "hidden_size": 32,
 "intermediate_size": 24, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 12,
 "query_pre_attn_scalar": 20, "sliding_window": 3, "attn_logit_softcapping": 1.0, "final_logit_softcapping": 2.0,
 "dtype": "float32", "eos_token_id": null}`

// TestGemma2HubConfig reads gemma-2-2b-it's config.json as published
// (transformers 4.42 layout: no layer_types, torch_dtype).
func TestGemma2HubConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"architectures": ["Gemma2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": [1, 107],
  "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
  "hidden_size": 2304, "initializer_range": 0.02, "intermediate_size": 9216, "max_position_embeddings": 8192, "model_type": "gemma2",
  "num_attention_heads": 8, "num_hidden_layers": 26, "num_key_value_heads": 4, "pad_token_id": 0, "query_pre_attn_scalar": 256,
  "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": 4096, "torch_dtype": "float32", "transformers_version": "4.42.4",
  "use_cache": true, "vocab_size": 256000}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 256 || c.NumKVHeads != 4 || c.QKNorm || !c.NormPlusOne || !c.SandwichNorms || !c.TieEmbeddings ||
		c.HiddenAct != "gelu_pytorch_tanh" || c.QueryPreAttnScalar != 256 || c.SlidingWindow != 4096 || c.Rope.Theta != 1e4 ||
		c.LocalRope != nil || c.AttnSoftcap != 50 || c.FinalSoftcap != 30 || c.EmbedScale != 48 || c.BOSTokenID != 2 ||
		c.PadTokenID != 0 || len(c.EOSTokenIDs) != 2 || c.EOSTokenIDs[1] != 107 {
		t.Fatalf("gemma-2-2b read as %+v", c)
	}
	for i, s := range c.SlidingLayers {
		if s != (i%2 == 0) {
			t.Fatalf("layer %d sliding %v; Gemma2Config makes even layers local", i, s)
		}
	}
}

// TestGemma2Defaults: Gemma2Config's defaults for what config.json leaves
// out, null soft-caps (none), and layer_types when present.
func TestGemma2Defaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type": "gemma2", "vocab_size": 64, "hidden_size": 64, "intermediate_size": 48, "num_hidden_layers": 3, "num_attention_heads": 8}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 256 || c.NumKVHeads != 4 || c.QueryPreAttnScalar != 256 || c.SlidingWindow != 4096 || c.Rope.Theta != 1e4 ||
		c.AttnSoftcap != 50 || c.FinalSoftcap != 30 || !c.TieEmbeddings || c.EmbedScale != 8 || c.PadTokenID != 0 ||
		c.BOSTokenID != 2 || c.EOSTokenIDs[0] != 1 || c.MaxPositions != 8192 || !c.SlidingLayers[0] || c.SlidingLayers[1] || !c.SlidingLayers[2] {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ParseConfig([]byte(`{"model_type": "gemma2", ` + qsizes + `, "head_dim": 8, "attn_logit_softcapping": null,
	  "final_logit_softcapping": null, "layer_types": ["full_attention", "full_attention", "sliding_attention"], "sliding_window": 16}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.AttnSoftcap != 0 || c.FinalSoftcap != 0 || c.SlidingLayers[0] || c.SlidingLayers[1] || !c.SlidingLayers[2] || c.SlidingWindow != 16 {
		t.Fatalf("null caps and layer_types: %+v", c)
	}
}

// TestGemma2ConfigRefusals names the key of every Gemma 2 config ftune
// cannot compute as Gemma2ForCausalLM does.
func TestGemma2ConfigRefusals(t *testing.T) {
	for extra, want := range map[string]string{
		`"attn_logit_softcapping": 0`:         "attn_logit_softcapping must be > 0",
		`"final_logit_softcapping": -1`:       "final_logit_softcapping must be > 0",
		`"final_logit_softcapping": "30"`:     "final_logit_softcapping: want a number",
		`"hidden_activation": "gelu"`:         "hidden_activation",
		`"use_bidirectional_attention": true`: "use_bidirectional_attention",
		`"sliding_window": null`:              "sliding_window null",
		`"head_dim": null`:                    "head_dim is null",
		`"query_pre_attn_scalar": 0`:          "query_pre_attn_scalar",
		`"num_attention_heads": 5`:            "not a multiple of num_attention_heads 5",
		`"layer_types": ["chunked_attention", "full_attention", "full_attention"]`: "chunked_attention",
	} {
		_, err := ParseConfig([]byte(`{"model_type": "gemma2", ` + qsizes + `, ` + extra + `}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming %q", extra, err, want)
		}
	}
}

// TestGemma2FeaturesReachLogits: each Gemma 2 setting changes the logits
// of a random model (so none is silently dropped): both soft-caps, the
// query scalar, the window (from its length on only) and which layers are
// local.
func TestGemma2FeaturesReachLogits(t *testing.T) {
	ids := [][]int{{3, 17, 5, 39, 8, 21, 0, 11, 2, 30}}
	ws := randomWeights(t, gemma2Config, 5)
	load := func(cfg string) [][][]float64 {
		m, err := Load(writeFolder(t, cfg, ws), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return logits(t, m, ids, nil)
	}
	base := load(gemma2Config)
	for name, cfg := range map[string]string{
		"attn_logit_softcapping":  strings.Replace(gemma2Config, `"attn_logit_softcapping": 1.0`, `"attn_logit_softcapping": null`, 1),
		"final_logit_softcapping": strings.Replace(gemma2Config, `"final_logit_softcapping": 2.0`, `"final_logit_softcapping": null`, 1),
		"query_pre_attn_scalar":   strings.Replace(gemma2Config, `"query_pre_attn_scalar": 20`, `"query_pre_attn_scalar": 12`, 1),
		"layer_types": strings.Replace(gemma2Config, `"sliding_window": 3`,
			`"sliding_window": 3, "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"]`, 1),
	} {
		if d := maxDiff(base[0][9], load(cfg)[0][9]); d < 1e-3 {
			t.Errorf("%s moved the logits by only %g", name, d)
		}
	}
	wide := load(strings.Replace(gemma2Config, `"sliding_window": 3`, `"sliding_window": 100`, 1))
	if d := maxDiff(base[0][2], wide[0][2]); d > 1e-5 {
		t.Errorf("position 2 (inside the window): the window size moved the logits by %g", d)
	}
	if d := maxDiff(base[0][9], wide[0][9]); d < 1e-3 {
		t.Errorf("position 9: a window of 3 vs 100 moved the logits by only %g", d)
	}
	for _, l := range base[0] {
		for _, v := range l {
			if v <= -2 || v >= 2 {
				t.Fatalf("logit %g outside the final soft-cap (-2, 2)", v)
			}
		}
	}
}

// TestGemma2Gradients: autograd's gradient of the loss through both
// soft-caps, the (1+w) sandwich norms, GeGLU, the embedding scale and the
// window agrees with central finite differences in float64.
func TestGemma2Gradients(t *testing.T) {
	checkGradients(t, gemma2Config, func(m *Model) []gradProbe {
		l0, l1 := m.Layers[0], m.Layers[1]
		return []gradProbe{
			{l0.InputNorm, []int{0, 9}}, {l0.PostAttnNorm, []int{4}}, {l1.PreFFNNorm, []int{2, 30}}, {l1.PostFFNNorm, []int{7}},
			{l0.Attn.Q.Weight, []int{0, 100}}, {l1.Attn.K.Weight, []int{5, 200}}, {l0.MLP.Gate.Weight, []int{0, 300}},
			{m.Norm, []int{3}}, {m.Embed, []int{3*32 + 1, 17*32 + 30}},
		}
	})
}

// TestGemma2LossOnly: the training loss (fused LM head and cross-entropy,
// the final soft-cap applied per chunk) and its gradient equal the loss
// over the full soft-capped logits.
func TestGemma2LossOnly(t *testing.T) {
	m := loadRandom(t, gemma2Config, 6)
	m.SetTrainable(true)
	ids := []int64{3, 17, 5, 39, 8, 21, 0, 11, 2, 30}
	batch := Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 2, 5), Labels: tensor.FromHost(m.Backend, tensor.I64, ids, 2, 5)}
	run := func(opt ForwardOptions) (float64, []float64) {
		tp := autograd.NewTape()
		out, err := m.Forward(tp, batch, opt)
		if err != nil {
			t.Fatal(err)
		}
		if err := tp.Backward(out.Loss); err != nil {
			t.Fatal(err)
		}
		g := m.Embed.Grad.F64()
		m.Embed.ZeroGrad()
		return out.Loss.Value.Item(), g
	}
	full, gFull := run(ForwardOptions{})
	fused, gFused := run(ForwardOptions{LossOnly: true, LossChunk: 3})
	if d := full - fused; d > 1e-5 || d < -1e-5 {
		t.Fatalf("loss %v over the full logits, %v fused", full, fused)
	}
	if d := maxDiff(gFull, gFused); d > 1e-5 {
		t.Fatalf("embedding gradients differ by %g between the full and the fused loss", d)
	}
}

// TestGemma2GenerateWithCache: greedy generation through the KV cache
// (soft-capped scores over cached keys, local layers windowed) picks the
// tokens full forward passes pick, past the window length.
func TestGemma2GenerateWithCache(t *testing.T) { checkCachedGeneration(t, gemma2Config) }

// geGLUOnlyBackend has the CPU's GeGLU but no soft-capping (a backend
// without tensor.SoftcapBackend, like CUDA's).
type geGLUOnlyBackend struct {
	tensor.Backend
	tensor.GeGLUBackend
}

// TestGemma2RefusedWithoutSoftcap: on a backend without soft-capping the
// load fails before any weight is read, naming both caps and the model
// type; a Gemma 2 with both caps null loads there.
func TestGemma2RefusedWithoutSoftcap(t *testing.T) {
	cpu := tensor.CPUDefault()
	be := geGLUOnlyBackend{cpu, cpu}
	dir := writeFolder(t, gemma2Config, randomWeights(t, gemma2Config, 1))
	_, err := Load(dir, LoadOptions{Backend: be})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "attn_logit_softcapping") || !strings.Contains(err.Error(), "gemma2") {
		t.Fatalf("got %v, want a refusal naming the soft-caps and gemma2", err)
	}
	uncapped := strings.Replace(strings.Replace(gemma2Config, `"attn_logit_softcapping": 1.0`, `"attn_logit_softcapping": null`, 1),
		`"final_logit_softcapping": 2.0`, `"final_logit_softcapping": null`, 1)
	if _, err := Load(writeFolder(t, uncapped, randomWeights(t, uncapped, 1)), LoadOptions{Backend: be}); err != nil {
		t.Fatalf("without caps it must load: %v", err)
	}
}
