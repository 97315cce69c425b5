package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/ftune/ftune/internal/fsutil"
)

// ErrUnsupported marks a config.json this package cannot run.
var ErrUnsupported = errors.New("nn: unsupported model")

// Config is the subset of a Hugging Face config.json that defines a
// Llama-family forward pass, with every default filled in the way
// transformers' LlamaConfig, MistralConfig, Qwen2Config and Qwen3Config fill
// it.
type Config struct {
	ModelType        string
	Architectures    []string
	VocabSize        int
	HiddenSize       int
	IntermediateSize int
	NumLayers        int
	NumHeads         int
	NumKVHeads       int
	HeadDim          int
	RMSNormEps       float64
	MaxPositions     int
	TieEmbeddings    bool
	AttentionBias    bool   // bias on q, k, v
	OutputBias       bool   // bias on o_proj (llama's attention_bias)
	MLPBias          bool   // bias on gate, up, down (llama's mlp_bias)
	SlidingWindow    int    // 0 = none
	SlidingLayers    []bool // which layers use SlidingWindow
	Rope             RopeConfig
	BOSTokenID       int   // -1 = none; else < VocabSize, unless the family's default (checkTokenIDs)
	EOSTokenIDs      []int // each < VocabSize, unless the family's default (checkTokenIDs)
	// PadTokenID is -1 (none) or config.json's pad_token_id, which may be
	// VocabSize or more (parseTokens): it is never used as a token.
	PadTokenID    int
	HiddenAct     string
	TorchDType    string
	PartialRotary float64
	// QKNorm is Qwen3's RMSNorm over head_dim on each head's query and key
	// (self_attn.q_norm, self_attn.k_norm), applied before RoPE.
	QKNorm bool
	// Gemma 3 (gemma3_text, parseGemma3):
	NormPlusOne        bool        // every RMSNorm scales by (1 + w)
	SandwichNorms      bool        // post_attention_layernorm on the attention output; pre/post_feedforward_layernorm around the MLP
	EmbedScale         float64     // token embeddings are multiplied by it; 0 = not scaled
	QueryPreAttnScalar float64     // scores scale by its inverse square root; 0 = head_dim
	LocalRope          *RopeConfig // RoPE of the sliding-window layers; nil = Rope
	// NoRopeLayers marks SmolLM3's NoPE layers (parseSmolLM3): their
	// queries and keys are not rotated. Nil or all false: every layer
	// rotates.
	NoRopeLayers []bool
	// FusedProjections is Phi-3's layout (phi3, parsePhi3): q, k and v are
	// one self_attn.qkv_proj and gate and up one mlp.gate_up_proj.
	FusedProjections bool
	// Gemma 2 (parseGemma2): tanh soft-caps c·tanh(x/c); 0 = none.
	AttnSoftcap  float64 // on the attention scores (attn_logit_softcapping)
	FinalSoftcap float64 // on the logits (final_logit_softcapping)
	// Granite (granite, parseGranite); 0 = not set:
	EmbedMultiplier float64 // the token embeddings are multiplied by it after the embedding module (embedding_multiplier; unlike EmbedScale, which is Gemma's scaled embedding module itself)
	AttnScale       float64 // the attention scores' scale itself (attention_multiplier); 0 = 1/√head_dim or QueryPreAttnScalar's
	ResidualScale   float64 // each block's attention and MLP outputs are multiplied by it before the residual add (residual_multiplier)
	LogitsDivisor   float64 // the logits are divided by it (logits_scaling)
	// Generation is the folder's generation_config.json (Load reads it;
	// ParseConfig and LoadConfig leave it zero).
	Generation GenerationDefaults
}

// RopeConfig is the rotary embedding of config.json in either layout, after
// transformers' standardisation (rope_scaling renamed rope_parameters,
// rope_theta moved inside, "type" read as "rope_type", the pretraining
// length filled in).
type RopeConfig struct {
	Theta                float64
	Type                 string  // default, linear, dynamic, yarn, longrope, llama3
	Factor               float64 // linear, dynamic, yarn, llama3 (longrope: 0 = inferred)
	LowFreqFactor        float64 // llama3
	HighFreqFactor       float64 // llama3
	OriginalMaxPositions int     // llama3, yarn, longrope
	BetaFast, BetaSlow   float64 // yarn; 0 = 32 and 1
	AttentionFactor      float64 // yarn, longrope; 0 = derived
	Mscale               float64 // yarn; 0 = unset
	MscaleAllDim         float64 // yarn; 0 = unset
	Truncate             bool    // yarn: round the correction range to whole dimensions (default true)
	ShortFactor          []float64
	LongFactor           []float64 // longrope, head_dim/2 each
}

// rawRope is one rope_scaling / rope_parameters object. Pointers tell an
// absent or null key from a zero.
type rawRope struct {
	RopeTheta                     *float64  `json:"rope_theta"`
	RopeType                      *string   `json:"rope_type"`
	Type                          *string   `json:"type"`
	Factor                        *float64  `json:"factor"`
	LowFreqFactor                 *float64  `json:"low_freq_factor"`
	HighFreqFactor                *float64  `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings *float64  `json:"original_max_position_embeddings"`
	BetaFast                      *float64  `json:"beta_fast"`
	BetaSlow                      *float64  `json:"beta_slow"`
	AttentionFactor               *float64  `json:"attention_factor"`
	Mscale                        *float64  `json:"mscale"`
	MscaleAllDim                  *float64  `json:"mscale_all_dim"`
	Truncate                      *bool     `json:"truncate"`
	ShortFactor                   []float64 `json:"short_factor"`
	LongFactor                    []float64 `json:"long_factor"`
	PartialRotaryFactor           *float64  `json:"partial_rotary_factor"`
}

type rawConfig struct {
	ModelType             string          `json:"model_type"`
	Architectures         []string        `json:"architectures"`
	VocabSize             *int            `json:"vocab_size"`
	HiddenSize            *int            `json:"hidden_size"`
	IntermediateSize      *int            `json:"intermediate_size"`
	NumHiddenLayers       *int            `json:"num_hidden_layers"`
	NumAttentionHeads     *int            `json:"num_attention_heads"`
	NumKeyValueHeads      json.RawMessage `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               *bool           `json:"mlp_bias"`
	SlidingWindow         json.RawMessage `json:"sliding_window"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`
	MaxWindowLayers       *int            `json:"max_window_layers"`
	LayerTypes            []string        `json:"layer_types"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`
	RopeParameters        json.RawMessage `json:"rope_parameters"`
	OrigMaxPositions      *float64        `json:"original_max_position_embeddings"`
	PartialRotaryFactor   *float64        `json:"partial_rotary_factor"`
	BOSTokenID            json.RawMessage `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
	PadTokenID            json.RawMessage `json:"pad_token_id"`
	HiddenAct             *string         `json:"hidden_act"`
	AttentionDropout      *float64        `json:"attention_dropout"`
	ResidPdrop            *float64        `json:"resid_pdrop"`
	QuantizationConfig    json.RawMessage `json:"quantization_config"`
	TorchDType            string          `json:"torch_dtype"`
	DType                 string          `json:"dtype"`
	qwen3Variants
	gemma3Keys
	smollm3Keys
	graniteKeys
}

// familyDefaults are the keyword defaults of each config class (transformers
// v5 LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config): what a key absent from
// config.json means. kvHeads 0 means "num_attention_heads". The sizes
// (vocab, hidden, intermediate, layers, heads) have class defaults too, but
// ftune requires them (ParseConfig).
type familyDefaults struct {
	kvHeads, maxPos int
	bos, eos        int     // -1 = None
	theta           float64 // the class's default_theta; 0 = 10000
}

var families = map[string]familyDefaults{
	"llama":   {kvHeads: 0, maxPos: 2048, bos: 1, eos: 2},
	"mistral": {kvHeads: 8, maxPos: 4096 * 32, bos: 1, eos: 2},
	"qwen2":   {kvHeads: 32, maxPos: 32768, bos: -1, eos: -1},
	"qwen3":   {kvHeads: 32, maxPos: 32768, bos: -1, eos: -1},
	// Gemma3TextConfig; its pad_token_id default 0 is set in ParseConfig.
	"gemma3_text": {kvHeads: 4, maxPos: 131072, bos: 2, eos: 1},
	// Phi3Config; its pad_token_id default 32000 is set in parsePhi3.
	"phi3": {kvHeads: 0, maxPos: 4096, bos: 1, eos: 32000},
	// Gemma2Config; pad_token_id 0 as Gemma 3's.
	"gemma2": {kvHeads: 4, maxPos: 8192, bos: 2, eos: 1},
	// SmolLM3Config; its pad_token_id default 128004 and tied embeddings
	// are set in ParseConfig.
	"smollm3": {kvHeads: 4, maxPos: 32768, bos: 128000, eos: 128001, theta: 2e6},
	// GraniteConfig: Llama's defaults (its four multipliers: parseGranite).
	"granite": {kvHeads: 0, maxPos: 2048, bos: 1, eos: 2},
}

// architectures maps each supported architectures[] entry to its family.
var architectures = map[string]string{
	"LlamaForCausalLM":   "llama",
	"MistralForCausalLM": "mistral",
	"Qwen2ForCausalLM":   "qwen2",
	"Qwen3ForCausalLM":   "qwen3",
	"Gemma3ForCausalLM":  "gemma3_text",
	"Phi3ForCausalLM":    "phi3",
	"Gemma2ForCausalLM":  "gemma2",
	"SmolLM3ForCausalLM": "smollm3",
	"GraniteForCausalLM": "granite",
}

// MaxConfigBytes bounds the config.json LoadConfig reads: real ones are a
// few kilobytes, and a downloaded folder's file is untrusted.
const MaxConfigBytes = 16 << 20

// maxLayers bounds num_hidden_layers before anything is sized by it (the
// per-layer tables here, the expected tensors in Load). The deepest open
// models have about 130 layers; a config.json claiming more than this is
// corrupt, and a billion layers would exhaust memory before any weight is
// read.
const maxLayers = 1 << 16

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := fsutil.ReadFileLimit(path, MaxConfigBytes)
	if err != nil {
		return Config{}, fmt.Errorf("nn: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes and validates a config.json document.
func ParseConfig(b []byte) (Config, error) {
	var r rawConfig
	if err := json.Unmarshal(b, &r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return Config{}, fmt.Errorf("nn: config.json: %s: got a JSON %s, want %s", te.Field, te.Value, te.Type)
		}
		return Config{}, fmt.Errorf("nn: config.json is not valid JSON: %w", err)
	}
	c := Config{ModelType: r.ModelType, Architectures: r.Architectures, RMSNormEps: 1e-6, PartialRotary: 1}
	if c.ModelType == "" && len(r.Architectures) > 0 {
		c.ModelType = architectures[r.Architectures[0]] // AutoConfig's fallback when model_type is missing
	}
	if c.ModelType == "gemma3" {
		return c, refuseGemma3Multimodal(r)
	}
	fam, ok := families[c.ModelType]
	if !ok {
		return c, fmt.Errorf("%w: model_type %q (want llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, smollm3 or granite)", ErrUnsupported, r.ModelType)
	}
	for _, a := range r.Architectures {
		if _, ok := architectures[a]; !ok {
			return c, fmt.Errorf("%w: architecture %q (want LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM, SmolLM3ForCausalLM or GraniteForCausalLM)", ErrUnsupported, a)
		}
	}
	// The sizes have class defaults in transformers (a llama config without
	// hidden_size is a 4096-wide model), but a config.json that omits one
	// is broken, and a default would only surface as a shape error against
	// every tensor: name the key instead.
	for _, k := range []struct {
		key string
		v   *int
	}{{"vocab_size", r.VocabSize}, {"hidden_size", r.HiddenSize}, {"intermediate_size", r.IntermediateSize}, {"num_hidden_layers", r.NumHiddenLayers}, {"num_attention_heads", r.NumAttentionHeads}} {
		if k.v == nil {
			return c, fmt.Errorf("nn: config.json: %s is missing (required; ftune does not guess the %s default)", k.key, c.ModelType)
		}
	}
	intOr := func(p *int, def int) int {
		if p != nil {
			return *p
		}
		return def
	}
	c.VocabSize, c.HiddenSize, c.IntermediateSize = *r.VocabSize, *r.HiddenSize, *r.IntermediateSize
	c.NumLayers, c.NumHeads = *r.NumHiddenLayers, *r.NumAttentionHeads
	if c.NumLayers > maxLayers {
		return c, fmt.Errorf("nn: config.json: num_hidden_layers %d is more than ftune loads (%d); the file is corrupt", c.NumLayers, maxLayers)
	}
	c.MaxPositions = intOr(r.MaxPositionEmbeddings, fam.maxPos)
	c.TorchDType = r.DType // v5 name; torch_dtype is the v4 one and loses when both are set
	if c.TorchDType == "" {
		c.TorchDType = r.TorchDType
	}
	c.HiddenAct = "silu"
	if r.HiddenAct != nil {
		c.HiddenAct = *r.HiddenAct
	}
	if c.HiddenAct != "silu" && c.HiddenAct != "swish" && c.ModelType != "gemma3_text" && c.ModelType != "gemma2" { // Gemma reads hidden_activation (parseGemma3) // ACT2FN maps both to SiLU
		return c, fmt.Errorf("%w: hidden_act %q (want silu)", ErrUnsupported, c.HiddenAct)
	}
	if err := refusePrequantized(r); err != nil {
		return c, err
	}
	if err := refuseDropout(r, c.ModelType); err != nil {
		return c, err
	}
	// num_key_value_heads: absent takes the class default (llama: heads,
	// mistral: 8, qwen2: 32); null means num_attention_heads.
	kv, present, err := optInt(r.NumKeyValueHeads, "num_key_value_heads")
	switch {
	case err != nil:
		return c, err
	case present:
		c.NumKVHeads = kv
	case len(r.NumKeyValueHeads) == 0 && fam.kvHeads > 0:
		c.NumKVHeads = fam.kvHeads
	default:
		c.NumKVHeads = c.NumHeads
	}
	// head_dim: null or absent means hidden_size / num_attention_heads
	// (llama, mistral, qwen2; qwen2 reads it with getattr when config.json
	// has it). Qwen3Config declares head_dim with a default of 128 instead
	// (parseQwen3).
	if c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if r.HeadDim != nil && *r.HeadDim != 0 {
		c.HeadDim = *r.HeadDim
	}
	if c.ModelType == "qwen3" {
		if err := c.parseQwen3(r, b); err != nil {
			return c, err
		}
	}
	if c.ModelType == "gemma3_text" {
		if err := c.parseGemma3(&r, b); err != nil {
			return c, err
		}
	}
	if c.ModelType == "phi3" {
		c.parsePhi3()
	}
	if c.ModelType == "gemma2" {
		if err := c.parseGemma2(&r, b); err != nil {
			return c, err
		}
	}
	if c.ModelType == "smollm3" {
		if err := c.parseSmolLM3(r); err != nil {
			return c, err
		}
		c.TieEmbeddings = true // SmolLM3Config's default, unlike the other families'
	}
	if c.ModelType == "granite" {
		if err := c.parseGranite(r); err != nil {
			return c, err
		}
	}
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	if r.TieWordEmbeddings != nil {
		c.TieEmbeddings = *r.TieWordEmbeddings // every family but smollm3 defaults to false
	}
	c.parseBiases(r)
	if err := c.parseSliding(r); err != nil {
		return c, err
	}
	if err := c.parseTokens(r, fam); err != nil {
		return c, err
	}
	if (c.ModelType == "gemma3_text" || c.ModelType == "gemma2") && len(r.PadTokenID) == 0 {
		c.PadTokenID = 0 // Gemma3TextConfig's pad_token_id default
	}
	if c.ModelType == "phi3" && len(r.PadTokenID) == 0 {
		c.PadTokenID = phi3DefaultPad
	}
	if c.ModelType == "smollm3" && len(r.PadTokenID) == 0 {
		c.PadTokenID = 128004 // SmolLM3Config's pad_token_id default
	}
	if err := c.parseRope(r, fam.theta); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// refusePrequantized refuses a checkpoint stored quantized (bitsandbytes,
// GPTQ, AWQ, FP8, ...): its weights are not the plain tensors ftune reads,
// and loading would otherwise fail later on a tensor name or shape that
// says nothing of quantization. ftune quantizes a full-precision base
// itself (model.load_in_4bit: NF4, as bitsandbytes).
func refusePrequantized(r rawConfig) error {
	if len(r.QuantizationConfig) == 0 || string(r.QuantizationConfig) == "null" {
		return nil
	}
	var q struct {
		Method string `json:"quant_method"`
	}
	if err := json.Unmarshal(r.QuantizationConfig, &q); err != nil || q.Method == "" {
		q.Method = "unnamed"
	}
	return fmt.Errorf("%w: config.json: quantization_config (quant_method %s): the weights are stored quantized, and ftune reads full-precision (bf16, f16, f32) weights; use the unquantized base (ftune quantizes it to NF4 itself with model.load_in_4bit or --memory-lean)", ErrUnsupported, q.Method)
}

// refuseDropout refuses dropout rates that transformers applies in
// training and ftune has nowhere to apply: attention_dropout, on the
// attention weights after the softmax (read by every family here), and
// Phi-3's resid_pdrop, on each block's attention and MLP outputs before
// the residual add (Phi3DecoderLayer). ftune's attention has no dropout
// (the fused kernels never form the weights it would drop), so a nonzero
// rate would otherwise be trained without, silently. Released checkpoints
// of these families all set 0.0. embd_pdrop is not refused: transformers
// v5's Phi3Model does not read it.
func refuseDropout(r rawConfig, modelType string) error {
	type rate struct {
		key  string
		v    *float64
		what string
	}
	rates := []rate{{"attention_dropout", r.AttentionDropout, "attention dropout (transformers drops attention weights with it in training)"}}
	if modelType == "phi3" {
		rates = append(rates, rate{"resid_pdrop", r.ResidPdrop, "residual dropout (Phi-3 drops each block's attention and MLP outputs with it in training)"})
	}
	for _, k := range rates {
		if k.v != nil && *k.v != 0 {
			return fmt.Errorf("%w: config.json: %s is %g, but ftune has no %s; set %s to 0.0 in config.json to train without it", ErrUnsupported, k.key, *k.v, k.what, k.key)
		}
	}
	return nil
}

// parseBiases follows the modules: LlamaAttention gives q, k, v and o
// bias=attention_bias and LlamaMLP bias=mlp_bias; Qwen2Attention has q, k, v
// biases always and none on o; Mistral has no bias anywhere. Keys a family
// does not read are ignored, as transformers ignores them.
func (c *Config) parseBiases(r rawConfig) {
	switch c.ModelType {
	case "llama", "smollm3", "granite": // SmolLM3's and Granite's attention and MLP take Llama's keys
		if r.AttentionBias != nil {
			c.AttentionBias, c.OutputBias = *r.AttentionBias, *r.AttentionBias
		}
		if r.MLPBias != nil {
			c.MLPBias = *r.MLPBias
		}
	case "qwen2":
		c.AttentionBias = true
	case "qwen3", "gemma3_text", "gemma2":
		// Qwen3Attention and Gemma3Attention: q, k, v and o take
		// bias=attention_bias; their MLPs have none (mlp_bias is not read).
		if r.AttentionBias != nil {
			c.AttentionBias, c.OutputBias = *r.AttentionBias, *r.AttentionBias
		}
	}
}

// readLayerTypes marks SlidingLayers from config.json's layer_types (one
// entry per layer, full_attention or sliding_attention); sliding, when not
// nil, may refuse a sliding layer the family's other keys give no window.
func (c *Config) readLayerTypes(types []string, sliding func(i int) error) error {
	if len(types) != c.NumLayers {
		return fmt.Errorf("nn: config.json: layer_types has %d entries, num_hidden_layers is %d", len(types), c.NumLayers)
	}
	for i, t := range types {
		switch t {
		case "full_attention":
		case "sliding_attention":
			if sliding != nil {
				if err := sliding(i); err != nil {
					return err
				}
			}
			c.SlidingLayers[i] = true
		default:
			return fmt.Errorf("%w: layer_types[%d] %q (want full_attention or sliding_attention)", ErrUnsupported, i, t)
		}
	}
	return nil
}

// parseSliding follows MistralConfig (sliding_window defaults to 4096, null
// disables it, and then every layer uses it) and Qwen2Config (the window
// only exists with use_sliding_window; layer_types, or else layers from
// max_window_layers (default 28) on, say which layers use it). Llama has no
// sliding window. The window W lets query q see keys k with q-W < k ≤ q
// (masking_utils.sliding_window_overlay).
func (c *Config) parseSliding(r rawConfig) error {
	c.SlidingLayers = make([]bool, max(c.NumLayers, 0))
	window, present, err := optInt(r.SlidingWindow, "sliding_window")
	if err != nil {
		return err
	}
	isNull := string(r.SlidingWindow) == "null"
	if !present && !isNull {
		window = 4096
	}
	switch c.ModelType {
	case "gemma3_text":
		return c.parseGemma3Sliding(r)
	case "phi3":
		return c.parsePhi3Sliding(r)
	case "gemma2":
		return c.parseGemmaSliding(r, gemma2DefaultPattern)
	case "smollm3":
		return c.parseSmolLM3Sliding(r, window, present)
	case "mistral":
		if isNull {
			return nil
		}
		if window <= 0 {
			return fmt.Errorf("nn: config.json: sliding_window must be > 0 or null, got %d", window)
		}
		c.SlidingWindow = window
		for i := range c.SlidingLayers {
			c.SlidingLayers[i] = true
		}
	case "qwen2", "qwen3": // Qwen3Config's window settings are Qwen2Config's
		use := r.UseSlidingWindow != nil && *r.UseSlidingWindow
		if !use || isNull {
			window = 0 // Qwen2Config stores sliding_window=None
		}
		if r.LayerTypes != nil {
			err := c.readLayerTypes(r.LayerTypes, func(i int) error {
				if window <= 0 {
					return fmt.Errorf("%w: layer_types[%d] is sliding_attention but no sliding_window is set (use_sliding_window %v, sliding_window %s)",
						ErrUnsupported, i, use, orNull(r.SlidingWindow))
				}
				return nil
			})
			if err != nil {
				return err
			}
		} else if window > 0 {
			first := 28
			if r.MaxWindowLayers != nil {
				first = *r.MaxWindowLayers
			}
			for i := range c.SlidingLayers {
				c.SlidingLayers[i] = i >= first
			}
		}
		if window > 0 && contains(c.SlidingLayers, true) {
			c.SlidingWindow = window
		}
	}
	return nil
}

// parseTokens reads bos/eos/pad ids: an int, null, or (eos) a list.
//
// transformers checks none of them, but ftune feeds an EOS id to the
// embedding (it pads rows with it when the tokenizer names no pad token),
// so a bos or eos id that config.json sets must be a token of the model:
// one outside the vocabulary would otherwise surface as an embedding
// error naming neither the file nor the key. -1 is accepted for bos and
// pad as "none", as null is: early LLaMA conversions (transformers 4.28)
// wrote "pad_token_id": -1. A pad id of vocab_size or more is kept: Phi-3's
// class default is 32000 whatever the vocabulary, some checkpoints carry
// one, and ftune never uses it as a token (the GGUF export writes it only
// when it names one). checkTokenIDs has the rules.
func (c *Config) parseTokens(r rawConfig, fam familyDefaults) error {
	var err error
	if c.BOSTokenID, err = tokenID(r.BOSTokenID, "bos_token_id", fam.bos); err != nil {
		return err
	}
	if c.PadTokenID, err = tokenID(r.PadTokenID, "pad_token_id", -1); err != nil {
		return err
	}
	switch {
	case len(r.EOSTokenID) == 0:
		if fam.eos >= 0 {
			c.EOSTokenIDs = []int{fam.eos}
		}
	case string(r.EOSTokenID) == "null":
	default:
		var one int
		if json.Unmarshal(r.EOSTokenID, &one) == nil {
			c.EOSTokenIDs = []int{one}
		} else if err := json.Unmarshal(r.EOSTokenID, &c.EOSTokenIDs); err != nil {
			return fmt.Errorf("nn: config.json: eos_token_id: want an int or a list of ints, got %.40s", r.EOSTokenID)
		}
	}
	if c.VocabSize <= 0 {
		return nil // Validate names vocab_size
	}
	return c.checkTokenIDs(len(r.BOSTokenID) > 0, len(r.EOSTokenID) > 0)
}

// checkTokenIDs refuses a negative id other than -1 ("none") for bos and
// pad, a negative eos id, and a bos or eos id outside the vocabulary.
// bosSet and eosSet say that config.json has the key; when it does not, an
// id equal to the family's default is kept outside the vocabulary, as
// transformers keeps it (SmolLM3's 128000 and 128001, Phi-3's eos 32000,
// in a hand-written config.json of a small model): it comes from no file,
// and no sampled token matches it.
func (c Config) checkTokenIDs(bosSet, eosSet bool) error {
	fam := families[c.ModelType]
	bad := func(key string, id int, why string) error {
		return fmt.Errorf("nn: config.json: %s %d %s; fix config.json (null means no such token)", key, id, why)
	}
	const negative = "is negative: token ids are 0 or more"
	outside := fmt.Sprintf("is not a token of this model (vocab_size %d: ids 0 to %d)", c.VocabSize, c.VocabSize-1)
	switch {
	case c.BOSTokenID < -1:
		return bad("bos_token_id", c.BOSTokenID, negative)
	case c.BOSTokenID >= c.VocabSize && (bosSet || c.BOSTokenID != fam.bos):
		return bad("bos_token_id", c.BOSTokenID, outside)
	case c.PadTokenID < -1:
		return bad("pad_token_id", c.PadTokenID, negative)
	}
	for i, id := range c.EOSTokenIDs {
		key := "eos_token_id"
		if len(c.EOSTokenIDs) > 1 {
			key = fmt.Sprintf("eos_token_id[%d]", i)
		}
		switch {
		case id < 0:
			return bad(key, id, negative)
		case id >= c.VocabSize && (eosSet || id != fam.eos):
			return bad(key, id, outside)
		}
	}
	return nil
}

func tokenID(raw json.RawMessage, key string, def int) (int, error) {
	if string(raw) == "null" {
		return -1, nil
	}
	v, present, err := optInt(raw, key)
	if !present || err != nil {
		return def, err
	}
	return v, nil
}

// optInt decodes an optional integer key; present is false when the key is
// absent or null.
func optInt(raw json.RawMessage, key string) (v int, present bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false, fmt.Errorf("nn: config.json: %s: want an integer or null, got %.40s", key, raw)
	}
	return v, true, nil
}

func orNull(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "absent"
	}
	return string(raw)
}

func contains(s []bool, v bool) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// maxDim bounds every size of config.json and the projection widths made
// from them (heads × head_dim), so that no tensor shape's element count
// can wrap around an int: a wrapped product (2^33 heads × head_dim 2^32 is
// 0 in 64 bits) would match a small or empty tensor of a hostile file. The
// largest real sizes (vocabularies of 256k-1M tokens, contexts of about
// 10M positions) are far below it; it also keeps max_position_embeddings
// inside GGUF's uint32 context_length.
const maxDim = 1 << 28

// Validate checks sizes and their combinations.
func (c Config) Validate() error {
	pos := map[string]int{"vocab_size": c.VocabSize, "hidden_size": c.HiddenSize, "intermediate_size": c.IntermediateSize,
		"num_hidden_layers": c.NumLayers, "num_attention_heads": c.NumHeads, "num_key_value_heads": c.NumKVHeads, "head_dim": c.HeadDim,
		"max_position_embeddings": c.MaxPositions}
	for _, k := range []string{"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings"} {
		if pos[k] <= 0 {
			return fmt.Errorf("nn: config.json: %s must be > 0, got %d", k, pos[k])
		}
		if pos[k] > maxDim {
			return fmt.Errorf("nn: config.json: %s %d is larger than any model's (ftune loads sizes up to %d); the file is corrupt", k, pos[k], maxDim)
		}
	}
	if err := c.checkTokenIDs(false, false); err != nil {
		return err
	}
	if c.NumHeads > maxDim/c.HeadDim {
		return fmt.Errorf("nn: config.json: num_attention_heads %d × head_dim %d is larger than any model's (ftune loads up to %d); the file is corrupt", c.NumHeads, c.HeadDim, maxDim)
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("nn: config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("nn: config.json: head_dim %d must be even for RoPE", c.HeadDim)
	}
	if !(c.RMSNormEps > 0) {
		return fmt.Errorf("nn: config.json: rms_norm_eps must be > 0, got %g", c.RMSNormEps)
	}
	for _, k := range []struct {
		key string
		v   float64
	}{{"embedding scale", c.EmbedScale}, {"embedding_multiplier", c.EmbedMultiplier}, {"attention scale", c.AttnScale}, {"residual_multiplier", c.ResidualScale}, {"logits_scaling", c.LogitsDivisor}} {
		if k.v < 0 || math.IsNaN(k.v) || math.IsInf(k.v, 0) {
			return fmt.Errorf("nn: config: %s must be a finite number > 0 (or 0, unset), got %g", k.key, k.v)
		}
	}
	if len(c.SlidingLayers) != c.NumLayers {
		return fmt.Errorf("nn: config: %d sliding-layer flags for %d layers", len(c.SlidingLayers), c.NumLayers)
	}
	if c.NoRopeLayers != nil && len(c.NoRopeLayers) != c.NumLayers {
		return fmt.Errorf("nn: config: %d NoPE-layer flags for %d layers", len(c.NoRopeLayers), c.NumLayers)
	}
	if rd := c.RotaryDim(); rd <= 0 || rd%2 != 0 {
		return fmt.Errorf("nn: config.json: RoPE would rotate %d dimensions per head (head_dim %d × partial_rotary_factor %g); want an even number > 0", rd, c.HeadDim, c.PartialRotary)
	}
	if c.LocalRope != nil {
		// Gemma 3's sliding layers: the base is rope_local_base_freq (or
		// rope_parameters.sliding_attention.rope_theta), the type default.
		const key = "rope_local_base_freq"
		if err := c.LocalRope.validate(c.HeadDim, c.HeadDim, key); err != nil {
			return fmt.Errorf("local (sliding-layer) RoPE: %w", err)
		}
		if err := c.checkRopeFrequencies(*c.LocalRope, key); err != nil {
			return fmt.Errorf("local (sliding-layer) RoPE: %w", err)
		}
	}
	if err := c.Rope.validate(c.RotaryDim(), c.HeadDim, "rope_theta"); err != nil {
		return err
	}
	return c.checkRopeFrequencies(c.Rope, "rope_theta")
}

// PadFallback is the token id batches are padded with when the tokenizer
// names no pad token: the first end-of-sequence id the vocabulary holds
// (a family default may lie outside a small vocabulary, checkTokenIDs),
// else 0. Padding is masked out of attention and loss, so its value only
// has to be a valid embedding row.
func (c Config) PadFallback() int {
	for _, id := range c.EOSTokenIDs {
		if id >= 0 && id < c.VocabSize {
			return id
		}
	}
	return 0
}

// GenerationDefaults are what a model folder's generation_config.json says
// about decoding, as transformers' generate() reads it: the ids that end
// generation and the sampling it does when its caller passes none.
// Instruct models list their end-of-turn ids there (Gemma-2-it [1, 107],
// Llama-3-Instruct [128001, 128008, 128009]) and often sample by default
// (Llama-3-Instruct: do_sample, temperature 0.6, top_p 0.9; Qwen2.5-
// Instruct adds repetition_penalty 1.05). Other keys (max_new_tokens,
// no_repeat_ngram_size, ...) are not read.
type GenerationDefaults struct {
	// Path is the file read; "" when the folder has none (then every
	// field is zero: greedy, no extra stop ids).
	Path string
	// EOSTokenIDs is eos_token_id (an int or a list); StopTokens adds them.
	EOSTokenIDs []int
	// DoSample is do_sample: without it transformers decodes greedily
	// whatever temperature, top_k and top_p say.
	DoSample bool
	// Temperature, TopK and TopP are the keys as the file gives them; nil
	// when absent or null (Sampling fills transformers' defaults in).
	Temperature *float64
	TopK        *int
	TopP        *float64
	// MinP is min_p (nil when absent or null); used when sampling, as
	// transformers does.
	MinP *float64
	// RepetitionPenalty is repetition_penalty (nil when absent or null;
	// 1 is off). transformers applies it whether or not it samples.
	RepetitionPenalty *float64
	// StopStrings is stop_strings (a string or a list of them; nil when
	// absent or null): transformers' generate() stops when the text ends
	// with one of them, sampling or not. nn generates ids and reads no
	// text: the ftune package and ftune generate apply them.
	StopStrings []string
}

// DefaultTopK is transformers' GenerationConfig top_k: generate() keeps the
// 50 most likely tokens when it samples and neither its caller nor
// generation_config.json sets top_k.
const DefaultTopK = 50

// Sampling is the decoding transformers' generate() does for this folder
// when its caller passes no sampling argument: sample is false for greedy
// (no do_sample), else opt holds the temperature (1 when absent), top_k
// (DefaultTopK when absent; 0, all tokens, when the file says 0), top_p
// (0, off, when absent or 1) and min_p (0, off, when absent). The
// repetition penalty is set either way (0 when absent or 1), as
// transformers applies it to greedy decoding too. Only these five are set
// (StopStrings are text: the ftune package applies them).
func (g GenerationDefaults) Sampling() (opt GenerateOptions, sample bool) {
	if g.RepetitionPenalty != nil && *g.RepetitionPenalty != 1 {
		opt.RepetitionPenalty = *g.RepetitionPenalty
	}
	if !g.DoSample {
		return opt, false
	}
	opt.Temperature, opt.TopK = 1, DefaultTopK
	if g.Temperature != nil {
		opt.Temperature = *g.Temperature
	}
	if g.TopK != nil {
		opt.TopK = *g.TopK
	}
	if g.TopP != nil && *g.TopP < 1 {
		opt.TopP = *g.TopP
	}
	if g.MinP != nil {
		opt.MinP = *g.MinP
	}
	return opt, true
}

// GenerationConfigFile is the file LoadGenerationDefaults reads.
const GenerationConfigFile = "generation_config.json"

// maxGenerationConfigBytes bounds generation_config.json: real ones are a
// few hundred bytes, and a downloaded folder's file is untrusted.
const maxGenerationConfigBytes = 1 << 20

// rawGeneration is the part of generation_config.json ftune reads. Raw
// values: each may be null, and the errors name the key.
type rawGeneration struct {
	EOSTokenID  json.RawMessage `json:"eos_token_id"`
	DoSample    json.RawMessage `json:"do_sample"`
	Temperature json.RawMessage `json:"temperature"`
	TopK        json.RawMessage `json:"top_k"`
	TopP        json.RawMessage `json:"top_p"`
	MinP        json.RawMessage `json:"min_p"`
	RepPenalty  json.RawMessage `json:"repetition_penalty"`
	StopStrings json.RawMessage `json:"stop_strings"`
}

// LoadGenerationDefaults reads dir/generation_config.json for a model of
// vocab tokens; a folder without one has zero defaults. The file is read
// as config.json is (a regular file of bounded size), and a malformed one
// is an error naming the file and the key. transformers drops an
// unreadable file with a log line and generates without it (its eos ids
// too); ftune refuses it, as it refuses a broken config.json, rather than
// generate past every end of turn.
func LoadGenerationDefaults(dir string, vocab int) (GenerationDefaults, error) {
	path := filepath.Join(dir, GenerationConfigFile)
	b, err := fsutil.ReadFileLimit(path, maxGenerationConfigBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return GenerationDefaults{}, nil
	}
	if err != nil {
		return GenerationDefaults{}, fmt.Errorf("nn: %w", err)
	}
	g, err := ParseGenerationDefaults(b, vocab)
	if err != nil {
		return GenerationDefaults{}, fmt.Errorf("%s: %w", path, err)
	}
	g.Path = path
	return g, nil
}

// ParseGenerationDefaults decodes a generation_config.json document for a
// model of vocab tokens (LoadGenerationDefaults; Path stays "").
func ParseGenerationDefaults(b []byte, vocab int) (GenerationDefaults, error) {
	var r rawGeneration
	if err := json.Unmarshal(b, &r); err != nil {
		return GenerationDefaults{}, fmt.Errorf("nn: %s is not a JSON object: %w", GenerationConfigFile, err)
	}
	bad := func(key string, raw json.RawMessage, want string) error {
		return fmt.Errorf("nn: %s: %s: want %s, got %.40s", GenerationConfigFile, key, want, raw)
	}
	isNull := func(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }
	var g GenerationDefaults
	if !isNull(r.EOSTokenID) {
		var one int
		if json.Unmarshal(r.EOSTokenID, &one) == nil {
			g.EOSTokenIDs = []int{one}
		} else if err := json.Unmarshal(r.EOSTokenID, &g.EOSTokenIDs); err != nil {
			return g, bad("eos_token_id", r.EOSTokenID, "an int or a list of ints")
		}
		for i, id := range g.EOSTokenIDs {
			if id < 0 || id >= vocab {
				key := "eos_token_id"
				if len(g.EOSTokenIDs) > 1 {
					key = fmt.Sprintf("eos_token_id[%d]", i)
				}
				return g, fmt.Errorf("nn: %s: %s %d is not a token of this model (vocab_size %d: ids 0 to %d)", GenerationConfigFile, key, id, vocab, vocab-1)
			}
		}
	}
	if !isNull(r.DoSample) && json.Unmarshal(r.DoSample, &g.DoSample) != nil {
		return g, bad("do_sample", r.DoSample, "true, false or null")
	}
	if !isNull(r.Temperature) {
		var t float64
		if json.Unmarshal(r.Temperature, &t) != nil || !(t >= 0) {
			return g, bad("temperature", r.Temperature, "a number ≥ 0 or null")
		}
		if g.DoSample && t == 0 {
			// transformers' generate() refuses it too (its temperature
			// warper wants a strictly positive float).
			return g, fmt.Errorf("nn: %s: temperature 0 with do_sample true: sampling needs a temperature > 0 (do_sample false is greedy)", GenerationConfigFile)
		}
		g.Temperature = &t
	}
	if !isNull(r.TopK) {
		var k int
		if json.Unmarshal(r.TopK, &k) != nil || k < 0 {
			return g, bad("top_k", r.TopK, "an integer ≥ 0 (0: all tokens) or null")
		}
		g.TopK = &k
	}
	if !isNull(r.TopP) {
		var p float64
		if json.Unmarshal(r.TopP, &p) != nil || !(p > 0 && p <= 1) {
			return g, bad("top_p", r.TopP, "a number in (0, 1] or null")
		}
		g.TopP = &p
	}
	if !isNull(r.MinP) {
		var p float64
		if json.Unmarshal(r.MinP, &p) != nil || !(p >= 0 && p <= 1) {
			return g, bad("min_p", r.MinP, "a number in [0, 1] or null")
		}
		g.MinP = &p
	}
	if !isNull(r.RepPenalty) {
		// transformers refuses a penalty ≤ 0 when it builds the processor.
		var p float64
		if json.Unmarshal(r.RepPenalty, &p) != nil || !(p > 0) {
			return g, bad("repetition_penalty", r.RepPenalty, "a number > 0 (1: off) or null")
		}
		g.RepetitionPenalty = &p
	}
	if !isNull(r.StopStrings) {
		var one string
		if json.Unmarshal(r.StopStrings, &one) == nil {
			g.StopStrings = []string{one}
		} else if json.Unmarshal(r.StopStrings, &g.StopStrings) != nil {
			return g, bad("stop_strings", r.StopStrings, "a string, a list of strings or null")
		}
		for i, s := range g.StopStrings {
			if s == "" {
				key := "stop_strings"
				if len(g.StopStrings) > 1 {
					key = fmt.Sprintf("stop_strings[%d]", i)
				}
				return g, fmt.Errorf("nn: %s: %s is empty: an empty string would end every reply at once", GenerationConfigFile, key)
			}
		}
	}
	return g, nil
}
