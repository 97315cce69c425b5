package nn

import (
	"fmt"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/tensor"
)

// Phi3Config's keyword defaults for what this file reads.
const (
	phi3DefaultPad     = 32000
	phi3DefaultEps     = 1e-5
	phi3DefaultOrigMax = 4096
)

// parsePhi3 applies what Phi3Config and the Phi-3 modules do differently
// from Llama (the defaults it changes are read before the keys override
// them):
//   - q, k and v are one projection, self_attn.qkv_proj [(heads + 2·kv
//     heads)·head_dim, hidden], rows q then k then v; gate and up are one,
//     mlp.gate_up_proj [2·intermediate, hidden], gate rows first
//     (Phi3MLP: up_states.chunk(2, dim=-1) → gate, up). Neither has a
//     bias; Phi3Attention and Phi3MLP read no attention_bias or mlp_bias
//     (Phi-4-mini's config.json has them false, and lm_head_bias, which
//     Phi3ForCausalLM ignores too).
//   - rms_norm_eps defaults to 1e-5, pad_token_id to 32000.
//   - sliding_window applies to every layer when set (parsePhi3Sliding).
//   - RoPE: default or longrope, over the first head_dim·partial_rotary_factor
//     dimensions of each head (parseRope, phi3Rope).
//
// tie_word_embeddings defaults to false as for Llama; Phi-4-mini sets it.
func (c *Config) parsePhi3() {
	c.FusedProjections = true
	c.RMSNormEps = phi3DefaultEps
}

// parsePhi3Sliding: Phi3Config's sliding_window defaults to None (no
// window); set, it applies to every layer (Phi3Model builds
// create_sliding_window_causal_mask for all of them), as Mistral's does.
func (c *Config) parsePhi3Sliding(r rawConfig) error {
	window, present, err := optInt(r.SlidingWindow, "sliding_window")
	if err != nil || !present {
		return err
	}
	if window <= 0 {
		return fmt.Errorf("nn: config.json: sliding_window must be > 0 or null, got %d", window)
	}
	c.SlidingWindow = window
	for i := range c.SlidingLayers {
		c.SlidingLayers[i] = true
	}
	return nil
}

// phi3Rope applies Phi3Config's RoPE rules on top of the common parsing:
// its convert_rope_params_to_dict renames the legacy types "su" and "yarn"
// to "longrope"; validate_rope accepts only default and longrope; and since
// original_max_position_embeddings is a field of Phi3Config (default 4096),
// standardize_rope_params always takes that top-level value, never one
// inside rope_scaling. It returns the type to parse and the pretraining
// length to use.
func phi3Rope(typ string, r rawConfig) (string, int, error) {
	if typ == "su" || typ == "yarn" {
		typ = "longrope"
	}
	if typ != "default" && typ != "longrope" {
		return typ, 0, fmt.Errorf("%w: rope_type %q: Phi3Config accepts only default and longrope (su and yarn read as longrope)", ErrUnsupported, typ)
	}
	orig := phi3DefaultOrigMax
	if r.OrigMaxPositions != nil {
		orig = int(*r.OrigMaxPositions)
	}
	return typ, orig, nil
}

// RotaryDim is the number of dimensions of each head that RoPE rotates:
// int(head_dim · partial_rotary_factor) as transformers' init functions
// compute it; the rest pass through unchanged (Phi-4-mini: 96 of 128).
func (c Config) RotaryDim() int {
	if c.PartialRotary == 0 {
		return c.HeadDim
	}
	return int(float64(c.HeadDim) * c.PartialRotary)
}

// projectQKV returns the query, key and value projections [B,T,·] of h:
// three Linears, or Phi-3's fused one split by columns as Phi3Attention
// slices it (q first, then k, then v).
func (m *Model) projectQKV(tp *autograd.Tape, b *Block, h *autograd.Var) (q, k, v *autograd.Var) {
	if b.Attn.QKV == nil {
		return b.Attn.Q.Forward(tp, h), b.Attn.K.Forward(tp, h), b.Attn.V.Forward(tp, h)
	}
	c := m.Config
	qd, kvd := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	parts := tp.Split(b.Attn.QKV.Forward(tp, h), -1, qd, kvd, kvd)
	return parts[0], parts[1], parts[2]
}

// projectGateUp returns the MLP's gate and up projections of h: two
// Linears, or Phi-3's fused one cut in halves (Phi3MLP's chunk(2): gate,
// then up).
func projectGateUp(tp *autograd.Tape, b *Block, h *autograd.Var) (gate, up *autograd.Var) {
	if b.MLP.GateUp == nil {
		return b.MLP.Gate.Forward(tp, h), b.MLP.Up.Forward(tp, h)
	}
	gu := b.MLP.GateUp.Forward(tp, h)
	n := gu.Value.Dim(-1) / 2
	parts := tp.Split(gu, -1, n, n)
	return parts[0], parts[1]
}

// rotate applies RoPE to x [B,T,heads,head_dim] with tables of
// rotaryDim/2 frequencies: the whole head, or with a partial rotary factor
// only its first rotaryDim dimensions, the rest passed through
// (transformers' apply_rotary_pos_emb: q_rot = q[..., :rotary_dim], q_pass
// after it).
//
// x is a projection's output (through Reshape and the head norms), which
// no backward reads and the block drops: the whole-head rotation is written
// over it (autograd's RoPEInPlace). The partial one reads a strided slice
// and writes a new tensor.
func rotate(tp *autograd.Tape, x *autograd.Var, cos, sin *tensor.Tensor) *autograd.Var {
	rd, d := 2*cos.Dim(-1), x.Value.Dim(-1)
	if rd == d {
		return tp.RoPEInPlace(x, cos, sin)
	}
	parts := tp.Split(x, -1, rd, d-rd)
	return tp.Concat(-1, tp.RoPE(parts[0], cos, sin), parts[1])
}

// Projection is one decoder linear layer by its module's last name.
type Projection struct {
	Name    string // q_proj, ..., or Phi-3's qkv_proj and gate_up_proj
	In, Out int
}

// Projections lists the linear layers of one decoder block with their
// sizes, in the layout the family stores (Phi-3: qkv_proj, o_proj,
// gate_up_proj, down_proj).
func (c Config) Projections() []Projection {
	H, I := c.HiddenSize, c.IntermediateSize
	qd, kvd := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	if c.FusedProjections {
		return []Projection{{"qkv_proj", H, qd + 2*kvd}, {"o_proj", qd, H}, {"gate_up_proj", H, 2 * I}, {"down_proj", I, H}}
	}
	return []Projection{
		{"q_proj", H, qd}, {"k_proj", H, kvd}, {"v_proj", H, kvd}, {"o_proj", qd, H},
		{"gate_proj", H, I}, {"up_proj", H, I}, {"down_proj", I, H},
	}
}
