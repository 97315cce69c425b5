package nn

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
)

// gemma3Config is a small Gemma 3: 4 layers alternating local (window 3)
// and global, head_dim 12 ≠ hidden/heads, a query_pre_attn_scalar that is
// not head_dim, distinct local and global RoPE bases.
const gemma3Config = `{"model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"], "vocab_size": 40, "hidden_size": 32,
 "intermediate_size": 24, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 12,
 "query_pre_attn_scalar": 20, "sliding_window": 3, "sliding_window_pattern": 2, "rope_theta": 1000000.0,
 "rope_local_base_freq": 10000.0, "dtype": "float32", "eos_token_id": null}`

// TestGemma3HubConfig reads gemma-3-1b-it's config.json as published
// (transformers 4.50 layout: rope_local_base_freq, sliding_window_pattern,
// torch_dtype bfloat16).
func TestGemma3HubConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "attn_logit_softcapping": null, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": [1, 106],
  "final_logit_softcapping": null, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152,
  "initializer_range": 0.02, "intermediate_size": 6912, "max_position_embeddings": 32768, "model_type": "gemma3_text",
  "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1, "pad_token_id": 0, "query_pre_attn_scalar": 256,
  "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000, "rope_scaling": null, "rope_theta": 1000000, "sliding_window": 512,
  "sliding_window_pattern": 6, "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0", "use_cache": true, "vocab_size": 262144}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 256 || c.NumKVHeads != 1 || !c.QKNorm || !c.NormPlusOne || !c.SandwichNorms || !c.TieEmbeddings ||
		c.HiddenAct != "gelu_pytorch_tanh" || c.QueryPreAttnScalar != 256 || c.SlidingWindow != 512 || c.Rope.Theta != 1e6 ||
		c.Rope.Type != "default" || c.LocalRope == nil || c.LocalRope.Theta != 1e4 || c.BOSTokenID != 2 || c.PadTokenID != 0 ||
		len(c.EOSTokenIDs) != 2 || c.EOSTokenIDs[1] != 106 {
		t.Fatalf("gemma-3-1b read as %+v", c)
	}
	// √1152 = 33.941 is 34 in bfloat16, as Gemma3TextScaledWordEmbedding
	// casts it to the weights' dtype.
	if c.EmbedScale != 34 {
		t.Fatalf("embedding scale %v, want 34 (√1152 in bfloat16)", c.EmbedScale)
	}
	for i, s := range c.SlidingLayers {
		if s != ((i+1)%6 != 0) {
			t.Fatalf("layer %d sliding %v; want five local layers then one global", i, s)
		}
	}
}

// TestGemma3Defaults: Gemma3TextConfig's defaults for what config.json
// leaves out, and transformers v5's layout (per-layer-type
// rope_parameters, layer_types).
func TestGemma3Defaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type": "gemma3_text", "vocab_size": 64, "hidden_size": 64, "intermediate_size": 48, "num_hidden_layers": 7, "num_attention_heads": 8}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 256 || c.NumKVHeads != 4 || c.QueryPreAttnScalar != 256 || c.SlidingWindow != 4096 || c.Rope.Theta != 1e6 ||
		c.LocalRope.Theta != 1e4 || !c.TieEmbeddings || c.EmbedScale != 8 || c.PadTokenID != 0 || c.BOSTokenID != 2 || c.EOSTokenIDs[0] != 1 ||
		c.SlidingLayers[5] || !c.SlidingLayers[6] || c.MaxPositions != 131072 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ParseConfig([]byte(`{"model_type": "gemma3_text", ` + qsizes + `, "head_dim": 8, "sliding_window": 16,
	  "layer_types": ["full_attention", "sliding_attention", "full_attention"], "tie_word_embeddings": false,
	  "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
	                      "sliding_attention": {"rope_type": "default", "rope_theta": 5000.0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rope.Type != "linear" || c.Rope.Factor != 8 || c.Rope.Theta != 1e6 || c.LocalRope.Theta != 5000 || c.TieEmbeddings ||
		c.SlidingLayers[0] || !c.SlidingLayers[1] || c.SlidingLayers[2] {
		t.Fatalf("v5 layout: %+v (local %+v)", c, c.LocalRope)
	}
	// v4 layout with rope_scaling (gemma-3-4b's text part): the scaling is
	// the global layers'; local layers keep the default RoPE.
	c, err = ParseConfig([]byte(`{"model_type": "gemma3_text", ` + qsizes + `, "head_dim": 8, "rope_theta": 1000000,
	  "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "rope_local_base_freq": 10000}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rope.Type != "linear" || c.Rope.Factor != 8 || c.Rope.Theta != 1e6 || c.LocalRope.Type != "default" || c.LocalRope.Theta != 1e4 {
		t.Fatalf("v4 rope_scaling: %+v (local %+v)", c.Rope, c.LocalRope)
	}
}

// TestGemma3ConfigRefusals names the key of every Gemma config ftune
// cannot compute as Gemma3ForCausalLM does.
func TestGemma3ConfigRefusals(t *testing.T) {
	for extra, want := range map[string]string{
		`"final_logit_softcapping": 30.0`:     "final_logit_softcapping",
		`"attn_logit_softcapping": 50.0`:      "attn_logit_softcapping",
		`"hidden_activation": "gelu"`:         "hidden_activation",
		`"use_bidirectional_attention": true`: "use_bidirectional_attention",
		`"sliding_window": null`:              "sliding_window null",
		`"head_dim": null`:                    "head_dim is null",
		`"layer_types": ["chunked_attention", "full_attention", "full_attention"]`:                                                     "chunked_attention",
		`"rope_parameters": {"full_attention": {"rope_type": "default"}, "sliding_attention": {"rope_type": "linear", "factor": 2.0}}`: "sliding_attention.rope_type",
	} {
		_, err := ParseConfig([]byte(`{"model_type": "gemma3_text", ` + qsizes + `, ` + extra + `}`))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming %q", extra, err, want)
		}
	}
	_, err := ParseConfig([]byte(`{"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"], "text_config": {"hidden_size": 2560}}`))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "gemma3_text") {
		t.Errorf("multimodal gemma3: %v, want a refusal pointing at gemma3_text", err)
	}
	if c, err := ParseConfig([]byte(`{"model_type": "gemma3_text", ` + qsizes + `, "attention_bias": true, "mlp_bias": true}`)); err != nil || !c.AttentionBias || !c.OutputBias || c.MLPBias {
		t.Errorf("Gemma3Attention takes attention_bias on q, k, v and o, the MLP none: %+v, %v", c, err)
	}
	if _, err := ParseConfig([]byte(`{"model_type": "gemma3_text", ` + qsizes + `, "final_logit_softcapping": null, "hidden_act": "gelu"}`)); err != nil {
		t.Errorf("null soft-capping and an unread hidden_act must load: %v", err)
	}
}

// TestGemma3WindowAndLocalRope: the window limits the local layers only
// from its length on (positions before it see the same keys either way),
// and the local RoPE base reaches the local layers.
func TestGemma3WindowAndLocalRope(t *testing.T) {
	ids := [][]int{{3, 17, 5, 39, 8, 21, 0, 11, 2, 30}}
	ws := randomWeights(t, gemma3Config, 5)
	wide := strings.Replace(gemma3Config, `"sliding_window": 3`, `"sliding_window": 100`, 1)
	otherBase := strings.Replace(gemma3Config, `"rope_local_base_freq": 10000.0`, `"rope_local_base_freq": 50.0`, 1)
	load := func(cfg string) [][][]float64 {
		m, err := Load(writeFolder(t, cfg, ws), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return logits(t, m, ids, nil)
	}
	base, w, b := load(gemma3Config), load(wide), load(otherBase)
	for p := 0; p < 3; p++ {
		if d := maxDiff(base[0][p], w[0][p]); d > 1e-5 {
			t.Fatalf("position %d (inside the window): the window size moved the logits by %g", p, d)
		}
	}
	if d := maxDiff(base[0][9], w[0][9]); d < 1e-3 {
		t.Fatalf("position 9: a window of 3 vs 100 moved the logits by only %g", d)
	}
	if d := maxDiff(base[0][9], b[0][9]); d < 1e-3 {
		t.Fatalf("rope_local_base_freq moved the logits by only %g", d)
	}
}

// TestGemma3Gradients: autograd's gradient of the loss through the (1+w)
// norms (input, post-attention, pre/post-feedforward, q/k), GeGLU, the
// embedding scale and the sliding window agrees with central finite
// differences in float64.
func TestGemma3Gradients(t *testing.T) {
	checkGradients(t, gemma3Config, func(m *Model) []gradProbe {
		l0, l1 := m.Layers[0], m.Layers[1]
		return []gradProbe{
			{l0.InputNorm, []int{0, 9}}, {l0.PostAttnNorm, []int{4}}, {l1.PreFFNNorm, []int{2, 30}}, {l1.PostFFNNorm, []int{7}},
			{l0.QNorm, []int{0, 5}}, {l1.KNorm, []int{11}}, {l0.MLP.Gate.Weight, []int{0, 300}}, {l1.MLP.Up.Weight, []int{77}},
			{m.Norm, []int{3}}, {m.Embed, []int{3*32 + 1, 17*32 + 30}},
		}
	})
}

// TestGemma3GenerateWithCache: greedy generation through the KV cache
// (local layers windowed over cached keys) picks the tokens full forward
// passes pick, past the window length.
func TestGemma3GenerateWithCache(t *testing.T) { checkCachedGeneration(t, gemma3Config) }

// noGeGLUBackend is the CPU backend seen through the Backend interface
// only, like a backend (CUDA today) without the GeGLU kernel.
type noGeGLUBackend struct{ tensor.Backend }

// TestGemma3RefusedWithoutGeGLU: on a backend without GeGLU the load fails
// before any weight is read, naming the kernel and the model type.
func TestGemma3RefusedWithoutGeGLU(t *testing.T) {
	dir := writeFolder(t, gemma3Config, randomWeights(t, gemma3Config, 1))
	_, err := Load(dir, LoadOptions{Backend: noGeGLUBackend{tensor.CPUDefault()}})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "GeGLU") || !strings.Contains(err.Error(), "gemma3_text") {
		t.Fatalf("got %v, want a refusal naming GeGLU and gemma3_text", err)
	}
	if _, err := Load(dir, LoadOptions{}); err != nil {
		t.Fatalf("the CPU backend must load it: %v", err)
	}
}
