package nn

import (
	"encoding/json"
	"fmt"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// Gemma2Config's keyword defaults for its soft-caps and layer pattern
// (the rest it shares with Gemma 3, parseGemma).
const (
	gemma2DefaultAttnSoftcap  = 50
	gemma2DefaultFinalSoftcap = 30
	// gemma2DefaultPattern: without layer_types, Gemma2Config makes layer i
	// sliding_attention when (i+1) % 2 != 0, so layers 0, 2, 4, … are local.
	gemma2DefaultPattern = 2
)

// parseGemma2 applies what Gemma2Config and the Gemma 2 modules do beyond
// Llama: everything parseGemma reads (head_dim, GeGLU, √hidden embeddings,
// (1 + w) norms around attention and MLP, query_pre_attn_scalar), no q/k
// norms, one RoPE for every layer (rope_theta, default 10000), and tanh
// soft-capping of the attention scores (attn_logit_softcapping, default
// 50) and of the final logits (final_logit_softcapping, default 30); null
// turns a cap off, as in Gemma2Attention and Gemma2ForCausalLM.
func (c *Config) parseGemma2(r *rawConfig, doc []byte) error {
	if err := c.parseGemma(r, doc); err != nil {
		return err
	}
	// Gemma2Config.validate_architecture (transformers 5) refuses this,
	// although head_dim is declared separately.
	if c.NumHeads > 0 && c.HiddenSize%c.NumHeads != 0 {
		return fmt.Errorf("nn: config.json: hidden_size %d is not a multiple of num_attention_heads %d (Gemma2Config requires it)", c.HiddenSize, c.NumHeads)
	}
	var err error
	if c.AttnSoftcap, err = softcapKey(r.AttnLogitSoftcapping, "attn_logit_softcapping", gemma2DefaultAttnSoftcap); err != nil {
		return err
	}
	c.FinalSoftcap, err = softcapKey(r.FinalLogitSoftcapping, "final_logit_softcapping", gemma2DefaultFinalSoftcap)
	return err
}

// softcapKey reads a soft-cap: absent takes the default, null is none (0),
// a number must be > 0.
func softcapKey(raw json.RawMessage, key string, def float64) (float64, error) {
	switch {
	case len(raw) == 0:
		return def, nil
	case string(raw) == "null":
		return 0, nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("nn: config.json: %s: want a number or null, got %.40s", key, raw)
	}
	if !(v > 0) {
		return 0, fmt.Errorf("nn: config.json: %s must be > 0 (or null for none), got %g", key, v)
	}
	return v, nil
}

// checkSoftcapBackend refuses a soft-capped model on a backend that cannot
// cap (the CUDA one today): the final-logit cap needs
// tensor.SoftcapBackend, and a backend without it has no capped attention
// either. Refused at load, before any weight is read, rather than at the
// first forward pass.
func checkSoftcapBackend(cfg Config, be tensor.Backend, where string) error {
	if (cfg.AttnSoftcap != 0 || cfg.FinalSoftcap != 0) && !tensor.SupportsSoftcap(be) {
		return fmt.Errorf("%w: %s: the %T backend has no tanh soft-capping (attn_logit_softcapping %g, final_logit_softcapping %g), which %s needs; run it on the CPU",
			ErrUnsupported, where, be, cfg.AttnSoftcap, cfg.FinalSoftcap, cfg.ModelType)
	}
	return nil
}

// logits is the LM head, soft-capped when the model says so
// (final_logit_softcapping: logits/c, tanh, ·c in Gemma2ForCausalLM).
func (m *Model) logits(tp *autograd.Tape, h *autograd.Var) *autograd.Var {
	l := m.LMHead.Forward(tp, h)
	if c := m.Config.FinalSoftcap; c != 0 {
		l = tp.Softcap(l, c)
	}
	return l
}
