package nn

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/ftune/ftune/autograd"
)

// gemma3Keys are the config.json keys of Gemma3TextConfig that other
// families do not have. Pointers and raw values tell absent from null.
type gemma3Keys struct {
	HiddenActivation          *string         `json:"hidden_activation"`
	QueryPreAttnScalar        *float64        `json:"query_pre_attn_scalar"`
	RopeLocalBaseFreq         *float64        `json:"rope_local_base_freq"`
	SlidingWindowPattern      *int            `json:"sliding_window_pattern"`
	FinalLogitSoftcapping     json.RawMessage `json:"final_logit_softcapping"`
	AttnLogitSoftcapping      json.RawMessage `json:"attn_logit_softcapping"`
	UseBidirectionalAttention *bool           `json:"use_bidirectional_attention"`
}

// gemma3Default* are Gemma3TextConfig's keyword defaults for what this
// file reads.
const (
	gemma3DefaultHeadDim     = 256
	gemma3DefaultQueryScalar = 256
	gemma3DefaultRopeTheta   = 1_000_000
	gemma3DefaultLocalTheta  = 10_000
	gemma3DefaultWindow      = 4096
	gemma3DefaultPattern     = 6
	gemma3Activation         = "gelu_pytorch_tanh"
)

// refuseGemma3Multimodal explains why model_type "gemma3" (the multimodal
// Gemma3ForConditionalGeneration) is not read as its text part: its
// weights live under another prefix (model.language_model.*) beside a
// vision tower and projector, and its text_config is nested, so loading
// it would need a different weight map, not just another config reader.
func refuseGemma3Multimodal(r rawConfig) error {
	return fmt.Errorf("%w: model_type \"gemma3\" is the multimodal Gemma3ForConditionalGeneration (text_config nested, weights under model.language_model.* with a vision tower); ftune runs the text-only gemma3_text (Gemma3ForCausalLM, e.g. gemma-3-1b): use such a checkpoint", ErrUnsupported)
}

// parseGemma3 applies what Gemma3TextConfig and the Gemma 3 modules do
// differently from Llama: head_dim is declared (default 256); the MLP
// activation is hidden_activation (gelu_pytorch_tanh, not hidden_act);
// embeddings are tied by default and scaled by √hidden_size rounded to the
// checkpoint's dtype (Gemma3TextScaledWordEmbedding); every RMSNorm
// multiplies by (1 + w); attention output and MLP input and output have
// their own norms; queries and keys are normalised per head before RoPE;
// scores are scaled by query_pre_attn_scalar^-0.5; sliding layers take
// their own RoPE base (rope_local_base_freq, or rope_parameters'
// sliding_attention entry in transformers v5's layout) while global
// layers take rope_theta (default 1e6) and rope_scaling. Gemma 3 has no
// soft-capping: a config that asks for it is refused.
func (c *Config) parseGemma3(r *rawConfig, doc []byte) error {
	if err := c.parseGemma(r, doc); err != nil {
		return err
	}
	g := r.gemma3Keys
	for _, k := range []struct {
		key string
		raw json.RawMessage
	}{{"final_logit_softcapping", g.FinalLogitSoftcapping}, {"attn_logit_softcapping", g.AttnLogitSoftcapping}} {
		if len(k.raw) > 0 && string(k.raw) != "null" {
			return fmt.Errorf("%w: %s %s: Gemma 3 has no soft-capping and ftune does not compute it (want null)", ErrUnsupported, k.key, k.raw)
		}
	}
	c.QKNorm = true
	return c.splitGemma3Rope(r)
}

// parseGemma applies what Gemma 2 and Gemma 3 share (their config classes
// declare the same keys and defaults for it): head_dim declared (default
// 256), hidden_activation (gelu_pytorch_tanh), tied embeddings by default,
// scaled by √hidden in the checkpoint's dtype, (1 + w) RMSNorms with a
// norm after attention and around the MLP, query_pre_attn_scalar (default
// 256), and no bidirectional variant.
func (c *Config) parseGemma(r *rawConfig, doc []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(doc, &keys); err != nil {
		return fmt.Errorf("nn: config.json: %w", err)
	}
	g := r.gemma3Keys
	switch raw, ok := keys["head_dim"]; {
	case !ok:
		c.HeadDim = gemma3DefaultHeadDim
	case string(raw) == "null":
		return fmt.Errorf("nn: config.json: head_dim is null; the %s config declares it an int (default 256): write the head size", c.ModelType)
	}
	c.HiddenAct = gemma3Activation
	if g.HiddenActivation != nil {
		c.HiddenAct = *g.HiddenActivation
	}
	if c.HiddenAct != gemma3Activation {
		return fmt.Errorf("%w: hidden_activation %q (Gemma uses gelu_pytorch_tanh, the only one ftune computes for it)", ErrUnsupported, c.HiddenAct)
	}
	if g.UseBidirectionalAttention != nil && *g.UseBidirectionalAttention {
		return fmt.Errorf("%w: use_bidirectional_attention true (an encoder variant of Gemma); ftune trains causal language models", ErrUnsupported)
	}
	c.TieEmbeddings = true // the Gemma configs' default; config.json may override
	c.NormPlusOne = true
	c.SandwichNorms = true
	q := float64(gemma3DefaultQueryScalar)
	if g.QueryPreAttnScalar != nil {
		q = *g.QueryPreAttnScalar
	}
	if !(q > 0) {
		return fmt.Errorf("nn: config.json: query_pre_attn_scalar must be > 0, got %g", q)
	}
	c.QueryPreAttnScalar = q
	c.EmbedScale = embedScale(c.HiddenSize, c.TorchDType)
	return nil
}

// splitGemma3Rope reads the local (sliding-layer) RoPE and leaves the
// global one for parseRope: in v5's layout rope_parameters holds
// {"full_attention": {...}, "sliding_attention": {...}}; in v4's,
// rope_theta and rope_scaling are global and rope_local_base_freq is the
// local base (its scaling is always the default one).
func (c *Config) splitGemma3Rope(r *rawConfig) error {
	if r.RopeTheta == nil {
		theta := float64(gemma3DefaultRopeTheta)
		r.RopeTheta = &theta
	}
	local := RopeConfig{Theta: gemma3DefaultLocalTheta, Type: "default", Truncate: true}
	if r.RopeLocalBaseFreq != nil {
		local.Theta = *r.RopeLocalBaseFreq
	}
	var perType map[string]json.RawMessage
	if !nonEmptyObject(r.RopeScaling) && len(r.RopeParameters) > 0 && json.Unmarshal(r.RopeParameters, &perType) == nil && len(perType) > 0 && allObjects(perType) {
		for k := range perType {
			if k != "full_attention" && k != "sliding_attention" {
				return fmt.Errorf("%w: rope_parameters has an entry for layer type %q (want full_attention and sliding_attention)", ErrUnsupported, k)
			}
		}
		r.RopeParameters = perType["full_attention"]
		if raw, ok := perType["sliding_attention"]; ok {
			var s rawRope
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("nn: config.json: rope_parameters.sliding_attention: %v", err)
			}
			typ := "default"
			if s.RopeType != nil {
				typ = *s.RopeType
			} else if s.Type != nil {
				typ = *s.Type
			}
			if typ != "default" {
				return fmt.Errorf("%w: rope_parameters.sliding_attention.rope_type %q: Gemma 3's local layers use the default RoPE, the only one ftune runs there", ErrUnsupported, typ)
			}
			if s.RopeTheta != nil {
				local.Theta = *s.RopeTheta
			}
		}
	}
	if !(local.Theta > 0) {
		return fmt.Errorf("nn: config.json: the local RoPE base (rope_local_base_freq) must be > 0, got %g", local.Theta)
	}
	c.LocalRope = &local
	return nil
}

// parseGemma3Sliding: sliding_window (default 4096) applies to the layers
// layer_types marks sliding_attention, or, without layer_types, to every
// layer but each sliding_window_pattern-th (default 6: five local, one
// global), as Gemma3TextConfig derives layer_types.
func (c *Config) parseGemma3Sliding(r rawConfig) error {
	p := gemma3DefaultPattern
	if r.SlidingWindowPattern != nil {
		p = *r.SlidingWindowPattern
	}
	if p <= 0 {
		return fmt.Errorf("nn: config.json: sliding_window_pattern must be > 0, got %d", p)
	}
	return c.parseGemmaSliding(r, p)
}

// parseGemmaSliding reads the window (default 4096, null refused) and
// which layers use it: layer_types, or else every layer but each
// pattern-th.
func (c *Config) parseGemmaSliding(r rawConfig, pattern int) error {
	window, present, err := optInt(r.SlidingWindow, "sliding_window")
	if err != nil {
		return err
	}
	if !present {
		if string(r.SlidingWindow) == "null" {
			return fmt.Errorf("%w: sliding_window null: Gemma's local layers need a window", ErrUnsupported)
		}
		window = gemma3DefaultWindow
	}
	if window <= 0 {
		return fmt.Errorf("nn: config.json: sliding_window must be > 0, got %d", window)
	}
	if r.LayerTypes != nil {
		if err := c.readLayerTypes(r.LayerTypes, nil); err != nil {
			return err
		}
	} else {
		for i := range c.SlidingLayers {
			c.SlidingLayers[i] = (i+1)%pattern != 0
		}
	}
	if contains(c.SlidingLayers, true) {
		c.SlidingWindow = window
	}
	return nil
}

// embedScale is √hidden as Gemma3TextScaledWordEmbedding applies it: a
// tensor cast to the weights' dtype, so a bfloat16 checkpoint scales by
// √hidden rounded to 8 significant bits (gemma-3-1b: √1152 = 33.94 → 34).
func embedScale(hidden int, dtype string) float64 {
	s := math.Sqrt(float64(hidden))
	switch dtype {
	case "bfloat16":
		return roundSignificand(s, 7)
	case "float16":
		return roundSignificand(s, 10)
	}
	return float64(float32(s))
}

// roundSignificand rounds a positive normal x to bits fraction bits, ties
// to even (a float → bf16 or f16 cast).
func roundSignificand(x float64, bits int) float64 {
	_, e := math.Frexp(x) // x = f·2^e, f in [0.5, 1)
	q := math.Ldexp(1, e-1-bits)
	return math.RoundToEven(x/q) * q
}

// norm is the model's RMSNorm: x/rms(x)·w, or ·(1 + w) for Gemma.
func (m *Model) norm(tp *autograd.Tape, x, w *autograd.Var) *autograd.Var {
	return tp.RMSNorm(x, m.normWeight(tp, w), m.Config.RMSNormEps)
}

// normWeight is w, or Gemma's 1 + w computed in float32 from the stored
// weight (bf16 on the GPU's bf16 path), as transformers' Gemma2RMSNorm and
// Gemma3RMSNorm do: 1 + w rounded back to bf16 would move each channel's
// scale by up to 2⁻⁹ relative, the same way in every row. The norms take
// a float32 weight with bf16 activations as it is.
func (m *Model) normWeight(tp *autograd.Tape, w *autograd.Var) *autograd.Var {
	if !m.Config.NormPlusOne {
		return w
	}
	return tp.AddScalar(tp.Cast(w, m.MasterDType()), 1)
}

// addNorm is the residual add x + a and the model's RMSNorm of the sum
// (as norm: ·(1 + w) for Gemma), fused into one node. a, the attention
// branch's output (o_proj's, or its norm's for Gemma), is read by no
// backward and not used again: the sum is written over it.
func (m *Model) addNorm(tp *autograd.Tape, x, a, w *autograd.Var) (sum, normed *autograd.Var) {
	return tp.AddRMSNormInPlace(a, x, m.normWeight(tp, w), m.Config.RMSNormEps)
}
