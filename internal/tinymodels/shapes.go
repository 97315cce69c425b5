package tinymodels

import "fmt"

// The shapes below list every tensor of each testdata/<family>-tiny/config.json,
// spelled out rather than derived from package nn so that the weights do
// not follow a change in ftune's own shape logic (a wrong shape there must
// fail to load these folders, not silently regenerate them).

// qwen3Shapes: hidden 64, intermediate 128, 2 layers, 4 heads, 2 KV heads,
// head_dim 32 so that heads·head_dim = 128 ≠ hidden, vocab 4096, tied
// embeddings, q/k norms, no bias.
func qwen3Shapes() map[string][]int { return llamaShapes(64, 128, 4096, 2, 4, 2, 32, true) }

// llamaShapes lists a Llama-layout folder's tensors (two norms per layer,
// separate q, k, v, o and gate, up, down projections, no bias, tied
// embeddings), with Qwen3's q/k norms when qkNorm.
func llamaShapes(H, I, V, L, NH, NKV, D int, qkNorm bool) map[string][]int {
	s := map[string][]int{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}}
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		s[p+"input_layernorm.weight"] = []int{H}
		s[p+"post_attention_layernorm.weight"] = []int{H}
		s[p+"self_attn.q_proj.weight"] = []int{NH * D, H}
		s[p+"self_attn.k_proj.weight"] = []int{NKV * D, H}
		s[p+"self_attn.v_proj.weight"] = []int{NKV * D, H}
		s[p+"self_attn.o_proj.weight"] = []int{H, NH * D}
		if qkNorm {
			s[p+"self_attn.q_norm.weight"] = []int{D}
			s[p+"self_attn.k_norm.weight"] = []int{D}
		}
		s[p+"mlp.gate_proj.weight"] = []int{I, H}
		s[p+"mlp.up_proj.weight"] = []int{I, H}
		s[p+"mlp.down_proj.weight"] = []int{H, I}
	}
	return s
}

// gemmaShapes lists a Gemma 2 or Gemma 3 folder's tensors: four norms per
// layer (input, post-attention, pre- and post-feedforward), q/k norms only
// for Gemma 3, tied embeddings, no bias.
func gemmaShapes(H, I, V, L, NH, NKV, D int, qkNorm bool) map[string][]int {
	s := map[string][]int{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}}
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		for _, n := range []string{"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
			s[p+n+".weight"] = []int{H}
		}
		s[p+"self_attn.q_proj.weight"] = []int{NH * D, H}
		s[p+"self_attn.k_proj.weight"] = []int{NKV * D, H}
		s[p+"self_attn.v_proj.weight"] = []int{NKV * D, H}
		s[p+"self_attn.o_proj.weight"] = []int{H, NH * D}
		if qkNorm {
			s[p+"self_attn.q_norm.weight"] = []int{D}
			s[p+"self_attn.k_norm.weight"] = []int{D}
		}
		s[p+"mlp.gate_proj.weight"] = []int{I, H}
		s[p+"mlp.up_proj.weight"] = []int{I, H}
		s[p+"mlp.down_proj.weight"] = []int{H, I}
	}
	return s
}

// gemma2Shapes: hidden 32, intermediate 64, 46 layers, 4 heads, 2 KV
// heads, head_dim 16, vocab 4096, no q/k norms.
func gemma2Shapes() map[string][]int { return gemmaShapes(32, 64, 4096, 46, 4, 2, 16, false) }

// gemma3Shapes: hidden 64, intermediate 128, 4 layers, 4 heads, 1 KV head,
// head_dim 32, vocab 4096, q/k norms.
func gemma3Shapes() map[string][]int { return gemmaShapes(64, 128, 4096, 4, 4, 1, 32, true) }

// phi3Shapes lists a Phi-3 folder's tensors: the fused self_attn.qkv_proj
// [(heads + 2·kv)·d, hidden] and mlp.gate_up_proj [2·intermediate,
// hidden], no bias, no lm_head when tied.
func phi3Shapes(H, I, V, L, NH, NKV, D int, tied bool) map[string][]int {
	s := map[string][]int{"model.embed_tokens.weight": {V, H}, "model.norm.weight": {H}}
	if !tied {
		s["lm_head.weight"] = []int{V, H}
	}
	for l := 0; l < L; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		s[p+"input_layernorm.weight"] = []int{H}
		s[p+"post_attention_layernorm.weight"] = []int{H}
		s[p+"self_attn.qkv_proj.weight"] = []int{(NH + 2*NKV) * D, H}
		s[p+"self_attn.o_proj.weight"] = []int{H, NH * D}
		s[p+"mlp.gate_up_proj.weight"] = []int{2 * I, H}
		s[p+"mlp.down_proj.weight"] = []int{H, I}
	}
	return s
}

// smollm3Shapes: SmolLM3's tensors are Llama's (no bias, tied embeddings):
// hidden 64, intermediate 128, 8 layers (layers 3 and 7 are its NoPE
// layers), 4 heads and 2 KV heads of head_dim 16, vocab 4096.
func smollm3Shapes() map[string][]int { return llamaShapes(64, 128, 4096, 8, 4, 2, 16, false) }

// graniteShapes: Granite's tensors are Llama's; this folder gives them every
// bias Granite can have (attention_bias: q, k, v and o; mlp_bias: gate, up
// and down), which llama.cpp's granite reads as optional tensors: hidden
// 64, intermediate 128, 4 layers, 4 heads and 2 KV heads of head_dim 16,
// vocab 4096, tied.
func graniteShapes() map[string][]int {
	const H, I, NH, NKV, D = 64, 128, 4, 2, 16
	s := llamaShapes(H, I, 4096, 4, NH, NKV, D, false)
	for l := 0; l < 4; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		s[p+"self_attn.q_proj.bias"] = []int{NH * D}
		s[p+"self_attn.k_proj.bias"] = []int{NKV * D}
		s[p+"self_attn.v_proj.bias"] = []int{NKV * D}
		s[p+"self_attn.o_proj.bias"] = []int{H}
		s[p+"mlp.gate_proj.bias"] = []int{I}
		s[p+"mlp.up_proj.bias"] = []int{I}
		s[p+"mlp.down_proj.bias"] = []int{H}
	}
	return s
}
