package nn

import (
	"fmt"
	"math"
)

// graniteKeys are the config.json keys GraniteConfig adds to Llama's.
type graniteKeys struct {
	EmbeddingMultiplier *float64 `json:"embedding_multiplier"`
	AttentionMultiplier *float64 `json:"attention_multiplier"`
	ResidualMultiplier  *float64 `json:"residual_multiplier"`
	LogitsScaling       *float64 `json:"logits_scaling"`
}

// parseGranite applies what GraniteConfig and its modules do differently
// from Llama (transformers' models/granite; IBM's Granite 3.x dense
// models): four scalars, each 1.0 when config.json is silent.
//
//   - embedding_multiplier scales the token embeddings (GraniteModel, after
//     the embedding module: NEFTune's noise, added to that module's
//     output, is scaled with them);
//   - attention_multiplier IS the attention scores' scale, replacing
//     1/√head_dim (GraniteAttention.scaling), so a config without it
//     scales the scores by 1;
//   - residual_multiplier scales each block's attention and MLP outputs
//     before their residual adds (GraniteDecoderLayer);
//   - logits_scaling divides the logits (GraniteForCausalLM).
//
// Each must be finite and > 0: transformers would run a zero or negative
// one, but a zero multiplier makes a dead model and a zero logits_scaling
// infinite logits, which no released checkpoint has.
func (c *Config) parseGranite(r rawConfig) error {
	read := func(key string, p *float64) (float64, error) {
		if p == nil {
			return 1, nil
		}
		if v := *p; !(v > 0) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("nn: config.json: %s must be a finite number > 0, got %g", key, v)
		}
		return *p, nil
	}
	var err error
	if c.EmbedMultiplier, err = read("embedding_multiplier", r.EmbeddingMultiplier); err != nil {
		return err
	}
	if c.AttnScale, err = read("attention_multiplier", r.AttentionMultiplier); err != nil {
		return err
	}
	if c.ResidualScale, err = read("residual_multiplier", r.ResidualMultiplier); err != nil {
		return err
	}
	if c.LogitsDivisor, err = read("logits_scaling", r.LogitsScaling); err != nil {
		return err
	}
	return nil
}

// attentionScale is the factor on the attention scores q·k: Granite's
// attention_multiplier, Gemma's 1/√query_pre_attn_scalar, else
// 1/√head_dim.
func (c Config) attentionScale() float64 {
	switch {
	case c.AttnScale != 0:
		return c.AttnScale
	case c.QueryPreAttnScalar != 0:
		return 1 / math.Sqrt(c.QueryPreAttnScalar)
	}
	return 1 / math.Sqrt(float64(c.HeadDim))
}
