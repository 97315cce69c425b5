package nn

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/fsutil"
)

// sizes is the common part of the configs below; each test appends its
// family's keys.
const sizes = `"vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 3, "num_attention_heads": 4`

func mustParse(t *testing.T, js string) Config {
	t.Helper()
	c, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", js, err)
	}
	return c
}

func TestParseConfigFamilies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		js    string
		check func(t *testing.T, c Config)
	}{
		{"llama v5 defaults", `{"model_type": "llama", ` + sizes + `}`, func(t *testing.T, c Config) {
			want := Config{ModelType: "llama", VocabSize: 64, HiddenSize: 32, IntermediateSize: 48, NumLayers: 3, NumHeads: 4,
				NumKVHeads: 4, HeadDim: 8, RMSNormEps: 1e-6, MaxPositions: 2048, SlidingLayers: []bool{false, false, false},
				Rope: RopeConfig{Theta: 10000, Type: "default", Truncate: true}, BOSTokenID: 1, EOSTokenIDs: []int{2}, PadTokenID: -1,
				HiddenAct: "silu", PartialRotary: 1}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		}},
		{"llama biases and null head_dim", `{"model_type": "llama", ` + sizes + `, "attention_bias": true, "mlp_bias": true, "head_dim": null, "num_key_value_heads": null}`, func(t *testing.T, c Config) {
			if !c.AttentionBias || !c.OutputBias || !c.MLPBias || c.HeadDim != 8 || c.NumKVHeads != 4 {
				t.Errorf("biases %v %v %v head_dim %d kv %d, want all true, 8, 4", c.AttentionBias, c.OutputBias, c.MLPBias, c.HeadDim, c.NumKVHeads)
			}
		}},
		{"llama head_dim and single kv head", `{"model_type": "llama", ` + sizes + `, "head_dim": 16, "num_key_value_heads": 1, "tie_word_embeddings": true}`, func(t *testing.T, c Config) {
			if c.HeadDim != 16 || c.NumKVHeads != 1 || !c.TieEmbeddings {
				t.Errorf("head_dim %d kv %d tied %v, want 16 1 true", c.HeadDim, c.NumKVHeads, c.TieEmbeddings)
			}
		}},
		{"mistral absent window is 4096, kv default 8, no biases", `{"model_type": "mistral", "vocab_size": 64, "hidden_size": 64, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 8, "attention_bias": true, "mlp_bias": true}`, func(t *testing.T, c Config) {
			if c.SlidingWindow != 4096 || !reflect.DeepEqual(c.SlidingLayers, []bool{true, true}) || c.NumKVHeads != 8 || c.AttentionBias || c.OutputBias || c.MLPBias || c.MaxPositions != 131072 {
				t.Errorf("window %d layers %v kv %d biases %v %v %v maxpos %d", c.SlidingWindow, c.SlidingLayers, c.NumKVHeads, c.AttentionBias, c.OutputBias, c.MLPBias, c.MaxPositions)
			}
		}},
		{"mistral null window", `{"model_type": "mistral", ` + sizes + `, "sliding_window": null, "num_key_value_heads": 2}`, func(t *testing.T, c Config) {
			if c.SlidingWindow != 0 || contains(c.SlidingLayers, true) {
				t.Errorf("window %d layers %v, want none", c.SlidingWindow, c.SlidingLayers)
			}
		}},
		{"mistral int window, layer_types ignored", `{"model_type": "mistral", ` + sizes + `, "sliding_window": 5, "num_key_value_heads": 1, "layer_types": ["full_attention", "full_attention", "full_attention"]}`, func(t *testing.T, c Config) {
			if c.SlidingWindow != 5 || !reflect.DeepEqual(c.SlidingLayers, []bool{true, true, true}) {
				t.Errorf("window %d layers %v, want 5 on every layer", c.SlidingWindow, c.SlidingLayers)
			}
		}},
		{"qwen2 defaults: qkv bias, kv 32 absent, no window unless used", `{"model_type": "qwen2", "vocab_size": 64, "hidden_size": 64, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 32, "sliding_window": 8}`, func(t *testing.T, c Config) {
			if !c.AttentionBias || c.OutputBias || c.MLPBias || c.NumKVHeads != 32 || c.SlidingWindow != 0 || c.BOSTokenID != -1 || c.EOSTokenIDs != nil || c.MaxPositions != 32768 {
				t.Errorf("bias %v/%v/%v kv %d window %d bos %d eos %v maxpos %d", c.AttentionBias, c.OutputBias, c.MLPBias, c.NumKVHeads, c.SlidingWindow, c.BOSTokenID, c.EOSTokenIDs, c.MaxPositions)
			}
		}},
		{"qwen2 window from max_window_layers", `{"model_type": "qwen2", ` + sizes + `, "num_key_value_heads": 4, "use_sliding_window": true, "sliding_window": 6, "max_window_layers": 1}`, func(t *testing.T, c Config) {
			if c.SlidingWindow != 6 || !reflect.DeepEqual(c.SlidingLayers, []bool{false, true, true}) {
				t.Errorf("window %d layers %v, want 6 on layers 1 and 2", c.SlidingWindow, c.SlidingLayers)
			}
		}},
		{"qwen2 max_window_layers defaults to 28", `{"model_type": "qwen2", ` + sizes + `, "num_key_value_heads": 4, "use_sliding_window": true, "sliding_window": 6}`, func(t *testing.T, c Config) {
			if contains(c.SlidingLayers, true) || c.SlidingWindow != 0 {
				t.Errorf("layers %v window %d, want no sliding layer among 3 < 28", c.SlidingLayers, c.SlidingWindow)
			}
		}},
		{"qwen2 layer_types win over max_window_layers", `{"model_type": "qwen2", ` + sizes + `, "num_key_value_heads": 4, "use_sliding_window": true, "sliding_window": 6, "max_window_layers": 0, "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]}`, func(t *testing.T, c Config) {
			if c.SlidingWindow != 6 || !reflect.DeepEqual(c.SlidingLayers, []bool{true, false, true}) {
				t.Errorf("window %d layers %v", c.SlidingWindow, c.SlidingLayers)
			}
		}},
		{"tokens and dtypes", `{"model_type": "llama", ` + sizes + `, "eos_token_id": [7, 9], "bos_token_id": null, "pad_token_id": 0, "torch_dtype": "bfloat16"}`, func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c.EOSTokenIDs, []int{7, 9}) || c.BOSTokenID != -1 || c.PadTokenID != 0 || c.TorchDType != "bfloat16" {
				t.Errorf("eos %v bos %d pad %d dtype %q", c.EOSTokenIDs, c.BOSTokenID, c.PadTokenID, c.TorchDType)
			}
		}},
		{"dtype wins over torch_dtype", `{"model_type": "llama", ` + sizes + `, "eos_token_id": null, "dtype": "float32", "torch_dtype": "bfloat16"}`, func(t *testing.T, c Config) {
			if c.TorchDType != "float32" || c.EOSTokenIDs != nil {
				t.Errorf("dtype %q eos %v", c.TorchDType, c.EOSTokenIDs)
			}
		}},
		{"model_type from architectures", `{"architectures": ["MistralForCausalLM"], ` + sizes + `, "num_key_value_heads": 4}`, func(t *testing.T, c Config) {
			if c.ModelType != "mistral" || c.SlidingWindow != 4096 {
				t.Errorf("model_type %q window %d", c.ModelType, c.SlidingWindow)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, mustParse(t, tc.js)) })
	}
}

func TestParseConfigRopeLayouts(t *testing.T) {
	llama3 := RopeConfig{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 16, Truncate: true}
	yarn := RopeConfig{Theta: 10000, Type: "yarn", Factor: 4, OriginalMaxPositions: 64, BetaFast: 32, BetaSlow: 1, Truncate: true}
	for _, tc := range []struct {
		name, rope string
		want       RopeConfig
	}{
		{"v4 no scaling", `"rope_theta": 500000.0, "rope_scaling": null`, RopeConfig{Theta: 500000, Type: "default", Truncate: true}},
		{"v4 linear with type", `"rope_theta": 1e4, "rope_scaling": {"type": "linear", "factor": 2.0}`, RopeConfig{Theta: 10000, Type: "linear", Factor: 2, Truncate: true}},
		{"v4 dynamic int factor", `"rope_scaling": {"type": "dynamic", "factor": 2}`, RopeConfig{Theta: 10000, Type: "dynamic", Factor: 2, Truncate: true}},
		{"v4 llama3 rope_type", `"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}`, llama3},
		{"v5 llama3", `"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}`, llama3},
		{"v5 theta inside wins", `"rope_theta": 1.0, "rope_parameters": {"rope_type": "default", "rope_theta": 5e5}`, RopeConfig{Theta: 500000, Type: "default", Truncate: true}},
		{"non-empty rope_scaling wins over rope_parameters", `"rope_scaling": {"type": "linear", "factor": 3}, "rope_parameters": {"rope_type": "default", "rope_theta": 7.0}`, RopeConfig{Theta: 10000, Type: "linear", Factor: 3, Truncate: true}},
		{"empty rope_scaling loses", `"rope_scaling": {}, "rope_parameters": {"rope_type": "linear", "factor": 3, "rope_theta": 7.0}`, RopeConfig{Theta: 7, Type: "linear", Factor: 3, Truncate: true}},
		{"yarn defaults", `"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": null, "beta_slow": 0}`, yarn},
		{"yarn null factor from lengths", `"rope_parameters": {"rope_type": "yarn", "factor": null, "original_max_position_embeddings": 64}`, yarn},
		{"yarn original from max_position_embeddings", `"rope_scaling": {"type": "yarn", "factor": 4.0}`, RopeConfig{Theta: 10000, Type: "yarn", Factor: 4, OriginalMaxPositions: 256, BetaFast: 32, BetaSlow: 1, Truncate: true}},
		{"top-level original wins", `"original_max_position_embeddings": 64, "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128}`, yarn},
		{"yarn options", `"rope_parameters": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "truncate": false, "mscale": 0.7, "mscale_all_dim": 0.8, "attention_factor": 1.5, "beta_fast": 16, "beta_slow": 2}`,
			RopeConfig{Theta: 10000, Type: "yarn", Factor: 4, OriginalMaxPositions: 64, BetaFast: 16, BetaSlow: 2, AttentionFactor: 1.5, Mscale: 0.7, MscaleAllDim: 0.8}},
		{"default ignores partial_rotary_factor", `"partial_rotary_factor": 0.5`, RopeConfig{Theta: 10000, Type: "default", Truncate: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, `{"model_type": "llama", `+sizes+`, "max_position_embeddings": 256, `+tc.rope+`}`)
			if !reflect.DeepEqual(c.Rope, tc.want) {
				t.Errorf("got  %+v\nwant %+v", c.Rope, tc.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, js    string
		unsupported bool     // errors.Is(err, ErrUnsupported)
		want        []string // substrings of the message
	}{
		{"invalid JSON", `{"model_type": "llama",`, false, []string{"not valid JSON"}},
		{"wrong JSON type", `{"model_type": "llama", "hidden_size": "big"}`, false, []string{"hidden_size", "int"}},
		{"unknown model_type", `{"model_type": "gpt2", ` + sizes + `}`, true, []string{`"gpt2"`, "llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, smollm3 or granite"}},
		{"no model_type", `{` + sizes + `}`, true, []string{"model_type", "llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, smollm3 or granite"}},
		{"unknown architecture", `{"model_type": "llama", "architectures": ["LlamaForSequenceClassification"], ` + sizes + `}`, true, []string{"LlamaForSequenceClassification", "LlamaForCausalLM"}},
		{"activation", `{"model_type": "llama", ` + sizes + `, "hidden_act": "gelu"}`, true, []string{`"gelu"`, "silu"}},
		{"kv heads", `{"model_type": "llama", ` + sizes + `, "num_key_value_heads": 3}`, false, []string{"num_attention_heads 4", "num_key_value_heads 3"}},
		{"odd head_dim", `{"model_type": "llama", ` + sizes + `, "head_dim": 7}`, false, []string{"head_dim 7", "even"}},
		{"zero size", `{"model_type": "llama", ` + sizes + `, "vocab_size": 0}`, false, []string{"vocab_size must be > 0"}},
		// Shapes are products of sizes: 2^33 heads × head_dim 2^32 wraps to
		// 0 in an int and would match an empty tensor.
		{"sizes whose product wraps", `{"model_type": "llama", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 8589934592, "num_key_value_heads": 8589934592, "head_dim": 4294967296}`, false, []string{"num_attention_heads 8589934592", "larger than any model's"}},
		{"heads × head_dim too large", `{"model_type": "llama", ` + sizes + `, "head_dim": 268435456}`, false, []string{"num_attention_heads 4 × head_dim 268435456"}},
		{"vocabulary too large", `{"model_type": "llama", ` + sizes + `, "vocab_size": 4611686018427387904}`, false, []string{"vocab_size 4611686018427387904", "larger than any model's"}},
		{"zero context", `{"model_type": "llama", ` + sizes + `, "max_position_embeddings": 0}`, false, []string{"max_position_embeddings must be > 0"}},
		// A context past any model's (the longest are about 10M positions)
		// would also wrap GGUF's uint32 context_length.
		{"context too long", `{"model_type": "llama", ` + sizes + `, "max_position_embeddings": 1000000000000000}`, false, []string{"max_position_embeddings 1000000000000000", "larger than any model's"}},
		// Per-layer tables are sized from the claim before any weight is
		// read: a billion layers is refused, not allocated.
		{"a billion layers", `{"model_type": "llama", ` + sizes + `, "num_hidden_layers": 1000000000}`, false, []string{"num_hidden_layers 1000000000", "65536"}},
		{"eos", `{"model_type": "llama", ` + sizes + `, "eos_token_id": "x"}`, false, []string{"eos_token_id", "int"}},
		{"mistral zero window", `{"model_type": "mistral", ` + sizes + `, "num_key_value_heads": 4, "sliding_window": 0}`, false, []string{"sliding_window", "> 0 or null"}},
		{"qwen2 layer_types length", `{"model_type": "qwen2", ` + sizes + `, "num_key_value_heads": 4, "layer_types": ["full_attention"]}`, false, []string{"layer_types has 1", "num_hidden_layers is 3"}},
		{"qwen2 sliding layer without window", `{"model_type": "qwen2", ` + sizes + `, "num_key_value_heads": 4, "layer_types": ["full_attention", "sliding_attention", "full_attention"]}`, true, []string{"layer_types[1]", "sliding_window"}},
		{"per-layer rope", `{"model_type": "qwen2", ` + sizes + `, "num_key_value_heads": 4, "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e6}, "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}}`, true, []string{"per layer type", "full_attention", "sliding_attention"}},
		{"unknown rope type", `{"model_type": "llama", ` + sizes + `, "rope_scaling": {"type": "su", "factor": 2}}`, true, []string{`"su"`, "rope_scaling"}},
		{"linear without factor", `{"model_type": "llama", ` + sizes + `, "rope_scaling": {"type": "linear"}}`, false, []string{`"linear"`, `"factor"`}},
		{"llama3 without high_freq_factor", `{"model_type": "llama", ` + sizes + `, "rope_parameters": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1}}`, false, []string{`"high_freq_factor"`, "rope_parameters"}},
		{"zero factor", `{"model_type": "llama", ` + sizes + `, "rope_scaling": {"type": "linear", "factor": 0}}`, false, []string{"factor must be > 0"}},
		{"partial rotary with scaling", `{"model_type": "llama", ` + sizes + `, "partial_rotary_factor": 0.5, "rope_scaling": {"type": "linear", "factor": 2}}`, true, []string{"partial_rotary_factor 0.5"}},
		{"longrope lengths", `{"model_type": "llama", ` + sizes + `, "rope_scaling": {"type": "longrope", "short_factor": [1], "long_factor": [1]}}`, false, []string{"head_dim/2 = 4"}},
		{"rope not an object", `{"model_type": "llama", ` + sizes + `, "rope_parameters": [1, 2]}`, false, []string{"rope_parameters", "object"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.js))
			if err == nil {
				t.Fatalf("no error for %s", tc.js)
			}
			if errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Errorf("errors.Is(ErrUnsupported) = %v, want %v (%v)", !tc.unsupported, tc.unsupported, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadConfig(dir)
	if err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Fatalf("missing config.json: error %v does not name it", err)
	}
	writeFile(t, dir, "config.json", `{"model_type": "llama", "vocab_size": }`)
	_, err = LoadConfig(dir)
	if err == nil || !strings.Contains(err.Error(), dir+"/config.json") || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("invalid config.json: error %v does not name the file and the problem", err)
	}
	// A sparse file: its size is refused before any byte is read.
	if err := os.Truncate(filepath.Join(dir, "config.json"), 8<<30); err != nil {
		t.Fatal(err)
	}
	_, err = LoadConfig(dir)
	if !errors.Is(err, fsutil.ErrTooLarge) || !strings.Contains(err.Error(), dir+"/config.json is 8.0 GiB") {
		t.Fatalf("an 8 GiB config.json: error %v; want it refused with its name and size", err)
	}
}

// TestModelV4AndV5ConfigsAgree: the same weights under a transformers v4
// config.json (rope_theta, rope_scaling with "type", torch_dtype) and its
// v5 form (rope_parameters, dtype) give the same logits.
func TestModelV4AndV5ConfigsAgree(t *testing.T) {
	head := `"model_type": "llama", "vocab_size": 48, "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64`
	for _, pair := range [][2]string{
		{`"rope_theta": 500000.0, "rope_scaling": {"type": "linear", "factor": 2.0}, "torch_dtype": "float32"`,
			`"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0}, "dtype": "float32"`},
		{`"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}`,
			`"rope_parameters": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16, "rope_theta": 500000.0}`},
	} {
		v4, v5 := "{"+head+", "+pair[0]+"}", "{"+head+", "+pair[1]+"}"
		w := randomWeights(t, v5, 15)
		m4, err := Load(writeFolder(t, v4, w), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		m5, err := Load(writeFolder(t, v5, w), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids := [][]int{tokens(16, 12, 48)}
		a, b := logits(t, m4, ids, nil)[0], logits(t, m5, ids, nil)[0]
		plain := loadRandom(t, "{"+head+"}", 15)
		c := logits(t, plain, ids, nil)[0]
		for p := range a {
			if d := maxDiff(a[p], b[p]); d != 0 {
				t.Errorf("%s: position %d differs by %.3g between the v4 and v5 configs", pair[1][:40], p, d)
			}
		}
		if d := maxDiff(a[11], c[11]); d < tolChanged {
			t.Errorf("%s: the scaling has no effect on the logits (%.3g): test has no power", pair[1][:40], d)
		}
	}
}
