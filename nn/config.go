package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrUnsupported marks a config.json this package cannot run.
var ErrUnsupported = errors.New("nn: unsupported model")

// Config is the subset of a Hugging Face config.json that defines a
// Llama-family forward pass.
type Config struct {
	ModelType         string
	Architectures     []string
	VocabSize         int
	HiddenSize        int
	IntermediateSize  int
	NumLayers         int
	NumHeads          int
	NumKVHeads        int
	HeadDim           int
	RMSNormEps        float64
	MaxPositions      int
	TieEmbeddings     bool
	AttentionBias     bool // bias on q, k, v (and o for llama)
	OutputBias        bool // bias on o_proj
	MLPBias           bool
	SlidingWindow     int    // 0 = none
	SlidingLayers     []bool // which layers use SlidingWindow
	Rope              RopeConfig
	BOSTokenID        int
	EOSTokenIDs       []int
	PadTokenID        int
	HiddenAct         string
	TorchDType        string
	PartialRotary     float64
	AttentionScaleDim int // head_dim used for the 1/sqrt scale
}

// RopeConfig is the rotary embedding of config.json in either layout.
type RopeConfig struct {
	Theta                float64
	Type                 string // default, linear, dynamic, yarn, llama3
	Factor               float64
	LowFreqFactor        float64 // llama3
	HighFreqFactor       float64 // llama3
	OriginalMaxPositions int     // llama3, yarn, dynamic
	BetaFast, BetaSlow   float64 // yarn
	AttentionFactor      float64 // yarn; 0 = derived from Factor
	MscaleAllDim         float64
	Mscale               float64
}

type rawRope struct {
	RopeTheta                     *float64 `json:"rope_theta"`
	RopeType                      string   `json:"rope_type"`
	Type                          string   `json:"type"`
	Factor                        *float64 `json:"factor"`
	LowFreqFactor                 *float64 `json:"low_freq_factor"`
	HighFreqFactor                *float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings *int     `json:"original_max_position_embeddings"`
	BetaFast                      *float64 `json:"beta_fast"`
	BetaSlow                      *float64 `json:"beta_slow"`
	AttentionFactor               *float64 `json:"attention_factor"`
	Mscale                        *float64 `json:"mscale"`
	MscaleAllDim                  *float64 `json:"mscale_all_dim"`
	PartialRotaryFactor           *float64 `json:"partial_rotary_factor"`
}

type rawConfig struct {
	ModelType             string          `json:"model_type"`
	Architectures         []string        `json:"architectures"`
	VocabSize             int             `json:"vocab_size"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	MaxPositionEmbeddings int             `json:"max_position_embeddings"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               bool            `json:"mlp_bias"`
	SlidingWindow         *int            `json:"sliding_window"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`
	MaxWindowLayers       *int            `json:"max_window_layers"`
	LayerTypes            []string        `json:"layer_types"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           *rawRope        `json:"rope_scaling"`
	RopeParameters        *rawRope        `json:"rope_parameters"`
	PartialRotaryFactor   *float64        `json:"partial_rotary_factor"`
	BOSTokenID            *int            `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
	PadTokenID            *int            `json:"pad_token_id"`
	HiddenAct             string          `json:"hidden_act"`
	TorchDType            string          `json:"torch_dtype"`
	DType                 string          `json:"dtype"`
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
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
		return Config{}, fmt.Errorf("nn: config.json is not valid JSON: %w", err)
	}
	c := Config{
		ModelType: r.ModelType, Architectures: r.Architectures, VocabSize: r.VocabSize,
		HiddenSize: r.HiddenSize, IntermediateSize: r.IntermediateSize, NumLayers: r.NumHiddenLayers,
		NumHeads: r.NumAttentionHeads, MaxPositions: r.MaxPositionEmbeddings, MLPBias: r.MLPBias,
		HiddenAct: r.HiddenAct, TorchDType: r.DType, RMSNormEps: 1e-6, PartialRotary: 1,
	}
	if c.TorchDType == "" {
		c.TorchDType = r.TorchDType
	}
	switch r.ModelType {
	case "llama", "mistral", "qwen2":
	default:
		return c, fmt.Errorf("%w: model_type %q (supported: llama, mistral, qwen2)", ErrUnsupported, r.ModelType)
	}
	if c.HiddenAct == "" {
		c.HiddenAct = "silu"
	}
	if c.HiddenAct != "silu" {
		return c, fmt.Errorf("%w: hidden_act %q (only silu)", ErrUnsupported, c.HiddenAct)
	}
	c.NumKVHeads = c.NumHeads
	if r.NumKeyValueHeads != nil {
		c.NumKVHeads = *r.NumKeyValueHeads
	}
	if c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if r.HeadDim != nil && *r.HeadDim > 0 {
		c.HeadDim = *r.HeadDim
	}
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	if r.TieWordEmbeddings != nil {
		c.TieEmbeddings = *r.TieWordEmbeddings
	} else {
		c.TieEmbeddings = false // LlamaConfig, MistralConfig and Qwen2Config default
	}
	switch r.ModelType {
	case "qwen2":
		c.AttentionBias = true // q, k, v carry biases; o does not
	default:
		if r.AttentionBias != nil {
			c.AttentionBias = *r.AttentionBias
			c.OutputBias = *r.AttentionBias
		}
	}
	c.SlidingLayers = make([]bool, c.NumLayers)
	if r.SlidingWindow != nil && *r.SlidingWindow > 0 {
		switch r.ModelType {
		case "mistral":
			c.SlidingWindow = *r.SlidingWindow
			for i := range c.SlidingLayers {
				c.SlidingLayers[i] = true
			}
		case "qwen2":
			if r.UseSlidingWindow != nil && *r.UseSlidingWindow {
				c.SlidingWindow = *r.SlidingWindow
				for i := range c.SlidingLayers {
					if len(r.LayerTypes) == c.NumLayers {
						c.SlidingLayers[i] = r.LayerTypes[i] == "sliding_attention"
					} else if r.MaxWindowLayers != nil {
						c.SlidingLayers[i] = i >= *r.MaxWindowLayers
					}
				}
			}
		}
	}
	if r.BOSTokenID != nil {
		c.BOSTokenID = *r.BOSTokenID
	}
	if r.PadTokenID != nil {
		c.PadTokenID = *r.PadTokenID
	} else {
		c.PadTokenID = -1
	}
	if len(r.EOSTokenID) > 0 && string(r.EOSTokenID) != "null" {
		var one int
		if json.Unmarshal(r.EOSTokenID, &one) == nil {
			c.EOSTokenIDs = []int{one}
		} else if err := json.Unmarshal(r.EOSTokenID, &c.EOSTokenIDs); err != nil {
			return c, fmt.Errorf("nn: eos_token_id: want an int or a list of ints, got %s", r.EOSTokenID)
		}
	}
	rope, err := parseRope(r)
	if err != nil {
		return c, err
	}
	c.Rope = rope
	if r.PartialRotaryFactor != nil {
		c.PartialRotary = *r.PartialRotaryFactor
	}
	if r.RopeParameters != nil && r.RopeParameters.PartialRotaryFactor != nil {
		c.PartialRotary = *r.RopeParameters.PartialRotaryFactor
	}
	if c.PartialRotary != 1 {
		return c, fmt.Errorf("%w: partial_rotary_factor %g", ErrUnsupported, c.PartialRotary)
	}
	return c, c.Validate()
}

func parseRope(r rawConfig) (RopeConfig, error) {
	rc := RopeConfig{Theta: 10000, Type: "default"}
	if r.RopeTheta != nil {
		rc.Theta = *r.RopeTheta
	}
	src := r.RopeScaling // transformers v4
	if r.RopeParameters != nil {
		src = r.RopeParameters // transformers v5
	}
	if src == nil {
		return rc, nil
	}
	if src.RopeTheta != nil {
		rc.Theta = *src.RopeTheta
	}
	t := src.RopeType
	if t == "" {
		t = src.Type
	}
	if t != "" {
		rc.Type = t
	}
	f := func(p *float64, def float64) float64 {
		if p != nil {
			return *p
		}
		return def
	}
	rc.Factor = f(src.Factor, 1)
	rc.LowFreqFactor = f(src.LowFreqFactor, 1)
	rc.HighFreqFactor = f(src.HighFreqFactor, 4)
	rc.BetaFast = f(src.BetaFast, 32)
	rc.BetaSlow = f(src.BetaSlow, 1)
	rc.AttentionFactor = f(src.AttentionFactor, 0)
	rc.Mscale = f(src.Mscale, 0)
	rc.MscaleAllDim = f(src.MscaleAllDim, 0)
	if src.OriginalMaxPositionEmbeddings != nil {
		rc.OriginalMaxPositions = *src.OriginalMaxPositionEmbeddings
	} else {
		rc.OriginalMaxPositions = r.MaxPositionEmbeddings
	}
	switch rc.Type {
	case "default", "linear", "dynamic", "yarn", "llama3":
	default:
		return rc, fmt.Errorf("%w: rope type %q (supported: default, linear, dynamic, yarn, llama3)", ErrUnsupported, rc.Type)
	}
	if rc.Type != "default" && rc.Factor <= 0 {
		return rc, fmt.Errorf("nn: rope %s: factor must be > 0, got %g", rc.Type, rc.Factor)
	}
	return rc, nil
}

// Validate checks sizes and their combinations.
func (c Config) Validate() error {
	pos := map[string]int{"vocab_size": c.VocabSize, "hidden_size": c.HiddenSize, "intermediate_size": c.IntermediateSize,
		"num_hidden_layers": c.NumLayers, "num_attention_heads": c.NumHeads, "num_key_value_heads": c.NumKVHeads, "head_dim": c.HeadDim}
	for _, k := range []string{"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim"} {
		if pos[k] <= 0 {
			return fmt.Errorf("nn: config.json: %s must be > 0, got %d", k, pos[k])
		}
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("nn: config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("nn: config.json: head_dim %d must be even for RoPE", c.HeadDim)
	}
	if c.RMSNormEps <= 0 {
		return fmt.Errorf("nn: config.json: rms_norm_eps must be > 0")
	}
	return nil
}
