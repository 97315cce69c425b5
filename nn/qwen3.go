package nn

import (
	"encoding/json"
	"fmt"

	"github.com/ftune/ftune/autograd"
)

// qwen3Variants are config.json keys of models derived from Qwen3 that
// reuse model_type "qwen3" in their own modeling code (remote code, forks):
// each changes the forward pass in a way Qwen3ForCausalLM does not, so a
// config that sets one is refused with the key named rather than run as a
// plain Qwen3. Transformers' Qwen3Config ignores them; ftune does not,
// because training a model whose math silently differs from its checkpoint
// is worse than an error.
type qwen3Variants struct {
	UseQKNorm                 *bool `json:"use_qk_norm"`
	NumExperts                *int  `json:"num_experts"`
	AttnOutputGate            *bool `json:"attn_output_gate"`
	HeadwiseAttnOutputGate    *bool `json:"headwise_attn_output_gate"`
	ElementwiseAttnOutputGate *bool `json:"elementwise_attn_output_gate"`
	UseDMA                    *bool `json:"use_dma"`
	DecoderSparseStep         *int  `json:"decoder_sparse_step"`
	MoEIntermediateSize       *int  `json:"moe_intermediate_size"`
	NumExpertsPerTok          *int  `json:"num_experts_per_tok"`
	SharedExpertIntermediate  *int  `json:"shared_expert_intermediate_size"`
	NormTopKProb              *bool `json:"norm_topk_prob"`
	OutputRouterLogits        *bool `json:"output_router_logits"`
	RouterAuxLossCoef         *any  `json:"router_aux_loss_coef"`
	MLPOnlyLayers             *any  `json:"mlp_only_layers"`
	FullAttentionInterval     *int  `json:"full_attention_interval"`
	LinearNumValueHeads       *int  `json:"linear_num_value_heads"`
	LinearConvKernelDim       *int  `json:"linear_conv_kernel_dim"`
}

// parseQwen3 applies what Qwen3Config and Qwen3Attention do differently
// from Qwen2: head_dim is a declared field whose default is 128 (not
// hidden_size / num_attention_heads, and null is not an int), every layer
// normalises each head's query and key over head_dim (q_norm, k_norm), and
// keys of Qwen3 variants with other math are refused.
func (c *Config) parseQwen3(r rawConfig, doc []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(doc, &keys); err != nil {
		return fmt.Errorf("nn: config.json: %w", err)
	}
	switch raw, ok := keys["head_dim"]; {
	case !ok:
		c.HeadDim = 128
	case string(raw) == "null":
		return fmt.Errorf("nn: config.json: head_dim is null; Qwen3Config declares it an int (default 128): write the head size")
	}
	v := r.qwen3Variants
	if v.UseQKNorm != nil && !*v.UseQKNorm {
		return fmt.Errorf("%w: use_qk_norm false: Qwen3ForCausalLM always normalises queries and keys", ErrUnsupported)
	}
	for _, k := range []struct {
		key string
		on  bool
	}{
		{"num_experts", v.NumExperts != nil && *v.NumExperts > 0},
		{"num_experts_per_tok", v.NumExpertsPerTok != nil && *v.NumExpertsPerTok > 0},
		{"moe_intermediate_size", v.MoEIntermediateSize != nil && *v.MoEIntermediateSize > 0},
		{"shared_expert_intermediate_size", v.SharedExpertIntermediate != nil && *v.SharedExpertIntermediate > 0},
		{"decoder_sparse_step", v.DecoderSparseStep != nil},
		{"norm_topk_prob", v.NormTopKProb != nil},
		{"output_router_logits", v.OutputRouterLogits != nil},
		{"router_aux_loss_coef", v.RouterAuxLossCoef != nil},
		{"mlp_only_layers", v.MLPOnlyLayers != nil},
		{"attn_output_gate", v.AttnOutputGate != nil && *v.AttnOutputGate},
		{"headwise_attn_output_gate", v.HeadwiseAttnOutputGate != nil && *v.HeadwiseAttnOutputGate},
		{"elementwise_attn_output_gate", v.ElementwiseAttnOutputGate != nil && *v.ElementwiseAttnOutputGate},
		{"use_dma", v.UseDMA != nil && *v.UseDMA},
		{"full_attention_interval", v.FullAttentionInterval != nil},
		{"linear_num_value_heads", v.LinearNumValueHeads != nil},
		{"linear_conv_kernel_dim", v.LinearConvKernelDim != nil},
	} {
		if k.on {
			return fmt.Errorf("%w: config.json key %s belongs to a Qwen3 variant (mixture of experts, gated or linear attention) that Qwen3ForCausalLM does not compute; ftune runs dense Qwen3 only", ErrUnsupported, k.key)
		}
	}
	c.QKNorm = true
	return nil
}

// headNorm is Qwen3's q_norm / k_norm: an RMSNorm over the last axis of
// [B,T,heads,head_dim], one weight of head_dim shared by every head. It
// returns x unchanged when the family has none.
func (m *Model) headNorm(tp *autograd.Tape, x, w *autograd.Var) *autograd.Var {
	if w == nil {
		return x
	}
	return m.norm(tp, x, w)
}
