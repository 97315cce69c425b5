package nn

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// smollm3Config is a small SmolLM3 whose layer 1 is a NoPE layer
// (no_rope_layers [1, 0, 1]).
const smollm3Config = `{"model_type": "smollm3", "architectures": ["SmolLM3ForCausalLM"], "vocab_size": 40, "hidden_size": 32,
 "intermediate_size": 24, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
 "no_rope_layers": [1, 0, 1], "rope_theta": 1000.0, "bos_token_id": null, "eos_token_id": null}`

// nopeIndices lists the layers flagged true.
func nopeIndices(flags []bool) []int {
	var out []int
	for i, f := range flags {
		if f {
			out = append(out, i)
		}
	}
	return out
}

// TestSmolLM3HubConfig reads SmolLM3-3B's config.json in the transformers
// v4 layout it was published in (the keys and values public projects
// reproduce; not fetched from the hub here): every fourth layer a NoPE
// layer, RoPE base 5e6, tied embeddings, no window.
func TestSmolLM3HubConfig(t *testing.T) {
	nope := strings.TrimSuffix(strings.Repeat("1, 1, 1, 0, ", 9), ", ")
	c, err := ParseConfig([]byte(`{"architectures": ["SmolLM3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": null, "eos_token_id": 128012, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
  "intermediate_size": 11008, "max_position_embeddings": 65536, "max_window_layers": 28, "mlp_bias": false,
  "model_type": "smollm3", "no_rope_layer_interval": 4, "no_rope_layers": [` + nope + `],
  "num_attention_heads": 16, "num_hidden_layers": 36, "num_key_value_heads": 4, "pad_token_id": 128004,
  "pretraining_tp": 2, "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 5000000.0, "sliding_window": null,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.54.0.dev0", "use_cache": false,
  "use_sliding_window": false, "vocab_size": 128256}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []int{3, 7, 11, 15, 19, 23, 27, 31, 35}
	if got := nopeIndices(c.NoRopeLayers); !slices.Equal(got, want) {
		t.Fatalf("NoPE layers %v, want %v", got, want)
	}
	if c.HeadDim != 128 || c.NumKVHeads != 4 || !c.TieEmbeddings || c.Rope.Theta != 5e6 || c.Rope.Type != "default" ||
		c.SlidingWindow != 0 || c.BOSTokenID != -1 || !slices.Equal(c.EOSTokenIDs, []int{128012}) || c.PadTokenID != 128004 ||
		c.AttentionBias || c.OutputBias || c.MLPBias || c.QKNorm || c.MaxPositions != 65536 {
		t.Fatalf("SmolLM3-3B read as %+v", c)
	}
}

// TestSmolLM3Defaults: SmolLM3Config's defaults where config.json is
// silent: a NoPE layer every no_rope_layer_interval layers (4), RoPE base
// 2e6 (its default_theta, not Llama's 1e4), tied embeddings, 4 KV heads,
// the Llama 3 tokenizer's special ids; and its window rules: with
// use_sliding_window and a window, the NoPE layers slide (layer_types
// derived), otherwise none does.
func TestSmolLM3Defaults(t *testing.T) {
	base := `{"model_type": "smollm3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 8, "num_attention_heads": 4`
	c, err := ParseConfig([]byte(base + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := nopeIndices(c.NoRopeLayers); !slices.Equal(got, []int{3, 7}) {
		t.Fatalf("default NoPE layers %v, want [3 7]", got)
	}
	if c.Rope.Theta != 2e6 || !c.TieEmbeddings || c.NumKVHeads != 4 || c.MaxPositions != 32768 || c.BOSTokenID != 128000 ||
		!slices.Equal(c.EOSTokenIDs, []int{128001}) || c.PadTokenID != 128004 || c.SlidingWindow != 0 || c.RMSNormEps != 1e-6 {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ParseConfig([]byte(base + `, "no_rope_layer_interval": 3, "tie_word_embeddings": false, "use_sliding_window": true, "sliding_window": 16}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := nopeIndices(c.NoRopeLayers); !slices.Equal(got, []int{2, 5}) {
		t.Fatalf("interval 3: NoPE layers %v, want [2 5]", got)
	}
	if c.TieEmbeddings || c.SlidingWindow != 16 || !slices.Equal(nopeIndices(c.SlidingLayers), []int{2, 5}) {
		t.Fatalf("interval 3 with a window: sliding layers %v window %d tied %v", nopeIndices(c.SlidingLayers), c.SlidingWindow, c.TieEmbeddings)
	}
	for _, extra := range []string{`"use_sliding_window": true, "sliding_window": null`, `"sliding_window": 16`, `"use_sliding_window": false, "sliding_window": 16`} {
		c, err := ParseConfig([]byte(base + `, ` + extra + `}`))
		if err != nil || c.SlidingWindow != 0 || slices.Contains(c.SlidingLayers, true) {
			t.Fatalf("%s: window %d layers %v, %v; want no sliding layer", extra, c.SlidingWindow, c.SlidingLayers, err)
		}
	}
	// Entries past the last layer are never read (the class documents
	// "at least" num_hidden_layers entries).
	c, err = ParseConfig([]byte(base + `, "no_rope_layers": [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]}`))
	if err != nil || !slices.Equal(nopeIndices(c.NoRopeLayers), []int{0}) {
		t.Fatalf("a longer no_rope_layers: %v, %v", c.NoRopeLayers, err)
	}
}

// TestSmolLM3ConfigRefusals names the key of every SmolLM3 config ftune
// cannot read as SmolLM3ForCausalLM would.
func TestSmolLM3ConfigRefusals(t *testing.T) {
	base := `{"model_type": "smollm3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 4, "num_attention_heads": 4, `
	for _, tc := range []struct{ extra, want string }{
		{`"no_rope_layers": [1, 0, 1]`, "no_rope_layers has 3 entries, num_hidden_layers is 4"},
		{`"no_rope_layers": [1, 2, 1, 1]`, "no_rope_layers[1] is 2"},
		{`"no_rope_layers": "all"`, "no_rope_layers: want a list of 0 and 1"},
		{`"no_rope_layer_interval": 0`, "no_rope_layer_interval must be > 0"},
		{`"layer_types": ["full_attention", "sliding_attention", "full_attention", "full_attention"], "sliding_window": 8`, "layer_types[1] is sliding_attention but use_sliding_window is false"},
		{`"layer_types": ["full_attention", "full_attention", "full_attention"]`, "layer_types has 3 entries"},
		{`"layer_types": ["full_attention", "chunked_attention", "full_attention", "full_attention"]`, `layer_types[1] "chunked_attention"`},
		{`"use_sliding_window": true, "sliding_window": -2`, "sliding_window must be > 0 or null"},
	} {
		_, err := ParseConfig([]byte(base + tc.extra + `}`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.extra, err, tc.want)
		}
	}
	_, err := ParseConfig([]byte(base + `"layer_types": ["full_attention", "chunked_attention", "full_attention", "full_attention"]}`))
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("an unknown layer type is not ErrUnsupported: %v", err)
	}
}

// TestSmolLM3NoPELayers: a NoPE layer's output does not depend on RoPE's
// base (turning it into a RoPE layer moves the logits), and the load puts
// the flags on the blocks.
func TestSmolLM3NoPELayers(t *testing.T) {
	ids := [][]int{{3, 17, 5, 39, 8, 21, 0, 11}}
	ws := randomWeights(t, smollm3Config, 6)
	load := func(cfg string) (*Model, [][][]float64) {
		m, err := Load(writeFolder(t, cfg, ws), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m, logits(t, m, ids, nil)
	}
	m, base := load(smollm3Config)
	if m.Layers[0].NoRope || !m.Layers[1].NoRope || m.Layers[2].NoRope {
		t.Fatalf("blocks' NoRope flags %v %v %v, want false true false", m.Layers[0].NoRope, m.Layers[1].NoRope, m.Layers[2].NoRope)
	}
	// Every layer NoPE: the RoPE base can no longer matter.
	allNoPE := strings.Replace(smollm3Config, `[1, 0, 1]`, `[0, 0, 0]`, 1)
	_, a := load(allNoPE)
	_, b := load(strings.Replace(allNoPE, `"rope_theta": 1000.0`, `"rope_theta": 7.0`, 1))
	for p := range ids[0] {
		if d := maxDiff(a[0][p], b[0][p]); d != 0 {
			t.Fatalf("all layers NoPE: the RoPE base moved position %d's logits by %g", p, d)
		}
	}
	_, rotated := load(strings.Replace(smollm3Config, `[1, 0, 1]`, `[1, 1, 1]`, 1))
	if d := maxDiff(base[0][7], rotated[0][7]); d < 1e-3 {
		t.Fatalf("rotating the NoPE layer moved the logits by only %g", d)
	}
}

// TestSmolLM3GenerateWithCache: the cache holds a NoPE layer's keys
// unrotated, as full passes compute them.
func TestSmolLM3GenerateWithCache(t *testing.T) { checkCachedGeneration(t, smollm3Config) }

// TestSmolLM3Gradients: autograd's gradients through RoPE and NoPE layers
// agree with central finite differences in float64.
func TestSmolLM3Gradients(t *testing.T) {
	checkGradients(t, smollm3Config, func(m *Model) []gradProbe {
		// layer 1's k_proj (a NoPE layer's keys), layer 2's q_proj (RoPE)
		return []gradProbe{{m.Layers[1].Attn.K.Weight, []int{0, 200, 511}}, {m.Layers[2].Attn.Q.Weight, []int{5, 600, 1000}}}
	})
}
