package nn

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
)

// graniteConfig: a tiny Granite with each of its scalars away from 1 (and
// the attention scale away from 1/√head_dim = 0.354), biases on.
const graniteConfig = `{"model_type": "granite", "architectures": ["GraniteForCausalLM"], "vocab_size": 40, "hidden_size": 32,
 "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "attention_bias": true, "mlp_bias": true, "embedding_multiplier": 3.0, "attention_multiplier": 0.7,
 "residual_multiplier": 0.4, "logits_scaling": 2.5, "rope_theta": 1000.0, "bos_token_id": null, "eos_token_id": null}`

// TestGraniteHubConfig reads Granite-3.1-2B's published config.json (its
// values as public projects reproduce them; not fetched from the hub):
// the four scalars, tied embeddings, GQA 32/8.
func TestGraniteHubConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"architectures": ["GraniteForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "attention_multiplier": 0.015625, "bos_token_id": 0, "embedding_multiplier": 12.0, "eos_token_id": 0, "hidden_act": "silu",
  "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192, "logits_scaling": 8.0,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "granite", "num_attention_heads": 32,
  "num_hidden_layers": 40, "num_key_value_heads": 8, "pad_token_id": 0, "residual_multiplier": 0.22, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 5000000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.47.0", "use_cache": true, "vocab_size": 49155}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.EmbedMultiplier != 12 || c.EmbedScale != 0 || c.AttnScale != 0.015625 || c.ResidualScale != 0.22 || c.LogitsDivisor != 8 ||
		c.HeadDim != 64 || c.NumKVHeads != 8 || !c.TieEmbeddings || c.Rope.Theta != 5e6 || c.SlidingWindow != 0 ||
		c.AttentionBias || c.OutputBias || c.MLPBias || c.RMSNormEps != 1e-5 || !slices.Equal(c.EOSTokenIDs, []int{0}) {
		t.Fatalf("Granite-3.1-2B read as %+v", c)
	}
	if got := c.attentionScale(); got != 0.015625 {
		t.Fatalf("attention scale %g, want attention_multiplier 0.015625", got)
	}
}

// TestGraniteDefaults: GraniteConfig's defaults where config.json is
// silent. Each multiplier is 1.0, which for the attention scale means
// scores scaled by 1, not Llama's 1/√head_dim; the other three leave the
// model as Llama's. attention_bias gives q, k, v and o biases, mlp_bias
// the MLP's, as in Llama.
func TestGraniteDefaults(t *testing.T) {
	base := `{"model_type": "granite", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4`
	c, err := ParseConfig([]byte(base + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.EmbedScale != 0 || c.EmbedMultiplier != 1 || c.AttnScale != 1 || c.ResidualScale != 1 || c.LogitsDivisor != 1 || c.attentionScale() != 1 ||
		c.NumKVHeads != 4 || c.MaxPositions != 2048 || c.TieEmbeddings || c.BOSTokenID != 1 || !slices.Equal(c.EOSTokenIDs, []int{2}) ||
		c.Rope.Theta != 10000 || c.AttentionBias || c.MLPBias {
		t.Fatalf("defaults: %+v (attention scale %g)", c, c.attentionScale())
	}
	c, err = ParseConfig([]byte(base + `, "attention_bias": true, "mlp_bias": true}`))
	if err != nil || !c.AttentionBias || !c.OutputBias || !c.MLPBias {
		t.Fatalf("biases: q/k/v %v o %v mlp %v, %v", c.AttentionBias, c.OutputBias, c.MLPBias, err)
	}
	// The other families keep their scale.
	llama, err := ParseConfig([]byte(strings.Replace(base, "granite", "llama", 1) + `, "attention_multiplier": 0.5}`))
	if err != nil || llama.AttnScale != 0 || llama.attentionScale() != 1/math.Sqrt(8) {
		t.Fatalf("a llama config.json with attention_multiplier: scale %g (AttnScale %g), %v; want 1/√8, the key ignored as transformers' LlamaConfig ignores it",
			llama.attentionScale(), llama.AttnScale, err)
	}
}

// TestGraniteConfigRefusals names each scalar ftune will not run.
func TestGraniteConfigRefusals(t *testing.T) {
	base := `{"model_type": "granite", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, `
	for _, tc := range []struct{ extra, want string }{
		{`"logits_scaling": 0`, "logits_scaling must be a finite number > 0, got 0"},
		{`"embedding_multiplier": -12`, "embedding_multiplier must be a finite number > 0, got -12"},
		{`"attention_multiplier": 0`, "attention_multiplier must be a finite number > 0, got 0"},
		{`"residual_multiplier": -0.22`, "residual_multiplier must be a finite number > 0, got -0.22"},
		{`"residual_multiplier": "0.22"`, "residual_multiplier: got a JSON string"},
		{`"attention_dropout": 0.1`, "attention_dropout is 0.1"},
	} {
		_, err := ParseConfig([]byte(base + tc.extra + `}`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.extra, err, tc.want)
		}
	}
	// A Config built in code is held to the same range.
	c, err := ParseConfig([]byte(base + `"logits_scaling": 4}`))
	if err != nil {
		t.Fatal(err)
	}
	c.ResidualScale = math.NaN()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "residual_multiplier") {
		t.Fatalf("a NaN residual scale: %v", err)
	}
}

// TestGraniteScalars: each scalar does what GraniteForCausalLM does with
// it, checked on one model against the same weights with the scalar put
// back: logits_scaling divides the logits exactly; attention_multiplier
// replaces 1/√head_dim (with it set to that value the model is Llama's);
// embedding_multiplier and residual_multiplier move the logits.
func TestGraniteScalars(t *testing.T) {
	ids := [][]int{{3, 17, 5, 39, 8, 21, 0, 11}}
	ws := randomWeights(t, graniteConfig, 9)
	load := func(cfg string) [][][]float64 {
		m, err := Load(writeFolder(t, cfg, ws), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return logits(t, m, ids, nil)
	}
	base := load(graniteConfig)
	undivided := load(strings.Replace(graniteConfig, `"logits_scaling": 2.5`, `"logits_scaling": 1.0`, 1))
	for p := range ids[0] {
		for v := range base[0][p] {
			if d := math.Abs(base[0][p][v]*2.5 - undivided[0][p][v]); d > 1e-5*(1+math.Abs(undivided[0][p][v])) {
				t.Fatalf("position %d token %d: logit %g × 2.5 != %g undivided", p, v, base[0][p][v], undivided[0][p][v])
			}
		}
	}
	llamaScale := load(strings.Replace(graniteConfig, `"attention_multiplier": 0.7`, `"attention_multiplier": 0.35355339059327373`, 1))
	asLlama := strings.Replace(strings.Replace(strings.Replace(graniteConfig, `"attention_multiplier": 0.7,`, ``, 1), `"granite"`, `"llama"`, 1), `GraniteForCausalLM`, `LlamaForCausalLM`, 1)
	asLlama = strings.NewReplacer(`"embedding_multiplier": 3.0,`, ``, `"residual_multiplier": 0.4,`, ``, `"logits_scaling": 2.5,`, ``).Replace(asLlama)
	llamaSame := load(strings.NewReplacer(`"embedding_multiplier": 3.0`, `"embedding_multiplier": 1.0`, `"residual_multiplier": 0.4`, `"residual_multiplier": 1.0`, `"logits_scaling": 2.5`, `"logits_scaling": 1.0`).Replace(
		strings.Replace(graniteConfig, `"attention_multiplier": 0.7`, `"attention_multiplier": 0.35355339059327373`, 1)))
	llama := load(asLlama)
	for p := range ids[0] {
		if d := maxDiff(llamaSame[0][p], llama[0][p]); d > 1e-5 {
			t.Fatalf("Granite with every scalar at Llama's value differs from Llama by %g at position %d", d, p)
		}
	}
	for name, other := range map[string][][][]float64{
		"attention_multiplier 1/√head_dim": llamaScale,
		"embedding_multiplier 1":           load(strings.Replace(graniteConfig, `"embedding_multiplier": 3.0`, `"embedding_multiplier": 1.0`, 1)),
		"residual_multiplier 1":            load(strings.Replace(graniteConfig, `"residual_multiplier": 0.4`, `"residual_multiplier": 1.0`, 1)),
	} {
		if d := maxDiff(base[0][7], other[0][7]); d < 1e-3 {
			t.Errorf("%s moved the logits by only %g", name, d)
		}
	}
}

// TestGraniteGenerateWithCache: cached decoding through the scaled
// residuals, attention and logits equals full passes.
func TestGraniteGenerateWithCache(t *testing.T) { checkCachedGeneration(t, graniteConfig) }

// TestGraniteGradients: autograd's gradients through the embedding,
// residual and logit scales and the replaced attention scale agree with
// central finite differences in float64.
func TestGraniteGradients(t *testing.T) {
	checkGradients(t, graniteConfig, func(m *Model) []gradProbe {
		return []gradProbe{{m.Layers[0].Attn.K.Weight, []int{0, 200, 511}}, {m.Layers[1].MLP.Down.Weight, []int{5, 300, 700}},
			{m.Layers[0].Attn.Q.Bias, []int{1, 9}}, {m.Embed, []int{3, 100}}}
	})
}

// TestGraniteEmbeddingHookSeesTheModuleOutput: Granite multiplies the
// embeddings after the embedding module (GraniteModel), so a hook on that
// module's output (TRL's NEFTune, EmbeddingHook here) sees them unscaled
// and its noise is scaled with them; Gemma's scale belongs to its
// embedding module (Gemma3TextScaledWordEmbedding), so there the hook
// sees them scaled.
func TestGraniteEmbeddingHookSeesTheModuleOutput(t *testing.T) {
	ws := randomWeights(t, graniteConfig, 4)
	m, err := Load(writeFolder(t, graniteConfig, ws), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []float64
	m.EmbeddingHook = func(tp *autograd.Tape, h *autograd.Var) *autograd.Var {
		seen = h.Value.F64()
		return h
	}
	logits(t, m, [][]int{{7, 3}}, nil)
	table, H := m.Embed.Value.F64(), m.Config.HiddenSize
	for i := 0; i < H; i++ {
		if seen[i] != table[7*H+i] || seen[H+i] != table[3*H+i] {
			t.Fatalf("the hook saw %g at dimension %d of token 7, want the table's %g (unscaled: embedding_multiplier applies after it)", seen[i], i, table[7*H+i])
		}
	}
	// A hook that doubles the embeddings doubles what the multiplier scales:
	// the same logits as embedding_multiplier 6.
	m.EmbeddingHook = func(tp *autograd.Tape, h *autograd.Var) *autograd.Var { return tp.Scale(h, 2) }
	doubled := logits(t, m, [][]int{{7, 3, 9}}, nil)
	six, err := Load(writeFolder(t, strings.Replace(graniteConfig, `"embedding_multiplier": 3.0`, `"embedding_multiplier": 6.0`, 1), ws), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := logits(t, six, [][]int{{7, 3, 9}}, nil)
	for p := range want[0] {
		if d := maxDiff(doubled[0][p], want[0][p]); d > 1e-5 {
			t.Fatalf("position %d: a doubling hook differs from embedding_multiplier 6 by %g", p, d)
		}
	}
}
