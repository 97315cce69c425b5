package bench

import (
	"fmt"
	"strings"
)

// Families are the model families whose LoRA step lorabench can time at
// one shape (-family), Llama first as the baseline the others are compared
// with. Each writes the config.json transformers reads for that family and
// the tensors its modeling code loads; everything but the family's own
// features (vocab, hidden, ffn, layers, heads, KV heads, head_dim) comes
// from the Shape, so the families differ only in what they compute.
var Families = []string{"llama", "qwen3", "gemma2", "gemma3", "phi3", "phi4mini"}

// DefaultWindow is the sliding window written for the Gemma families:
// Gemma 2's own 4096, longer than the benchmark sequences, so that their
// local layers do the same attention work as the global ones and the
// comparison with Llama measures only the extra operations (a smaller
// -window makes the local layers cheaper: the CPU attention skips keys
// outside the window).
const DefaultWindow = 4096

// tensorSpec is one weight of a random model folder: a [Rows, Cols]
// matrix drawn small and random, or a norm vector (Cols 0) set to the
// value that makes it the identity.
type tensorSpec struct {
	Name       string
	Rows, Cols int
}

func checkFamily(family string) error {
	for _, f := range Families {
		if f == family {
			return nil
		}
	}
	return fmt.Errorf("bench: unknown family %q, want one of %s", family, strings.Join(Families, ", "))
}

// familyConfig is the config.json of family at shape s, in the layout
// transformers 5 writes for that family (rope_parameters, layer_types),
// with the features issue 13 lists: Qwen3 q/k norms; Gemma 2 soft-caps
// 50/30, alternating sliding/global layers, GeGLU, query_pre_attn_scalar;
// Gemma 3 q/k norms, 5 local : 1 global with its own local RoPE base and
// linear scaling 8 on the global layers; Phi-3 fused projections and
// LongRoPE (untied, as Phi-3.5-mini); Phi-4-mini's partial rotary 0.75 and
// tied embeddings.
func familyConfig(family string, s Shape, window int) (map[string]any, error) {
	if err := checkFamily(family); err != nil {
		return nil, err
	}
	if window <= 0 {
		return nil, fmt.Errorf("bench: sliding window %d, want > 0", window)
	}
	hd := s.Hidden / s.Heads
	cfg := map[string]any{
		"vocab_size": s.Vocab, "hidden_size": s.Hidden, "intermediate_size": s.FFN,
		"num_hidden_layers": s.Layers, "num_attention_heads": s.Heads, "num_key_value_heads": s.KVHeads,
		"head_dim": hd, "rms_norm_eps": 1e-5, "max_position_embeddings": 8192,
		"tie_word_embeddings": true, "attention_bias": false, "hidden_act": "silu",
		"torch_dtype": "bfloat16",
	}
	layerTypes := func(global func(i int) bool) []string {
		t := make([]string, s.Layers)
		for i := range t {
			t[i] = "sliding_attention"
			if global(i) {
				t[i] = "full_attention"
			}
		}
		return t
	}
	switch family {
	case "llama":
		cfg["architectures"], cfg["model_type"] = []string{"LlamaForCausalLM"}, "llama"
		cfg["rope_theta"], cfg["mlp_bias"] = 10000.0, false
	case "qwen3":
		cfg["architectures"], cfg["model_type"] = []string{"Qwen3ForCausalLM"}, "qwen3"
		cfg["rope_parameters"] = map[string]any{"rope_theta": 1000000.0, "rope_type": "default"}
		cfg["use_sliding_window"], cfg["sliding_window"] = false, nil
	case "gemma2", "gemma3":
		cfg["hidden_activation"] = "gelu_pytorch_tanh"
		delete(cfg, "hidden_act")
		cfg["query_pre_attn_scalar"] = hd
		cfg["sliding_window"] = window
		cfg["rms_norm_eps"] = 1e-6
		if family == "gemma2" {
			cfg["architectures"], cfg["model_type"] = []string{"Gemma2ForCausalLM"}, "gemma2"
			cfg["attn_logit_softcapping"], cfg["final_logit_softcapping"] = 50.0, 30.0
			cfg["layer_types"] = layerTypes(func(i int) bool { return i%2 == 1 })
			cfg["rope_parameters"] = map[string]any{"rope_theta": 10000.0, "rope_type": "default"}
		} else {
			cfg["architectures"], cfg["model_type"] = []string{"Gemma3ForCausalLM"}, "gemma3_text"
			cfg["attn_logit_softcapping"], cfg["final_logit_softcapping"] = nil, nil
			cfg["layer_types"] = layerTypes(func(i int) bool { return i%6 == 5 })
			cfg["rope_parameters"] = map[string]any{
				"full_attention":    map[string]any{"rope_theta": 1000000.0, "rope_type": "linear", "factor": 8.0},
				"sliding_attention": map[string]any{"rope_theta": 10000.0, "rope_type": "default"},
			}
		}
	case "phi3", "phi4mini":
		cfg["architectures"], cfg["model_type"] = []string{"Phi3ForCausalLM"}, "phi3"
		delete(cfg, "head_dim") // Phi3Config derives it from hidden_size / heads
		rotary := hd
		if family == "phi4mini" {
			rotary = hd * 3 / 4
			cfg["partial_rotary_factor"] = 0.75
		} else {
			cfg["tie_word_embeddings"] = false
		}
		// LongRoPE factors rising from 1, one per rotary frequency: the
		// short ones apply at these sequence lengths (below the original
		// 4096 positions), as they do when Phi-3.5-mini is fine-tuned.
		short, long := make([]float64, rotary/2), make([]float64, rotary/2)
		for i := range short {
			short[i] = 1 + float64(i)/float64(len(short))
			long[i] = 1 + 8*float64(i)/float64(len(long))
		}
		cfg["max_position_embeddings"], cfg["original_max_position_embeddings"] = 131072, 4096
		cfg["rope_scaling"] = map[string]any{"type": "longrope", "short_factor": short, "long_factor": long}
		cfg["rope_theta"], cfg["sliding_window"] = 10000.0, nil
	}
	return cfg, nil
}

// familyTensors lists the weights of family at shape s, as its modeling
// code names them.
func familyTensors(family string, s Shape) []tensorSpec {
	H, hd := s.Hidden, s.Hidden/s.Heads
	q, kv := s.Heads*hd, s.KVHeads*hd
	ts := []tensorSpec{{"model.embed_tokens.weight", s.Vocab, H}, {"model.norm.weight", H, 0}}
	if family == "phi3" {
		ts = append(ts, tensorSpec{"lm_head.weight", s.Vocab, H})
	}
	for i := 0; i < s.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts, tensorSpec{p + "input_layernorm.weight", H, 0}, tensorSpec{p + "post_attention_layernorm.weight", H, 0})
		if family == "gemma2" || family == "gemma3" {
			ts = append(ts, tensorSpec{p + "pre_feedforward_layernorm.weight", H, 0}, tensorSpec{p + "post_feedforward_layernorm.weight", H, 0})
		}
		if family == "qwen3" || family == "gemma3" {
			ts = append(ts, tensorSpec{p + "self_attn.q_norm.weight", hd, 0}, tensorSpec{p + "self_attn.k_norm.weight", hd, 0})
		}
		if family == "phi3" || family == "phi4mini" {
			ts = append(ts, tensorSpec{p + "self_attn.qkv_proj.weight", q + 2*kv, H},
				tensorSpec{p + "mlp.gate_up_proj.weight", 2 * s.FFN, H})
		} else {
			ts = append(ts, tensorSpec{p + "self_attn.q_proj.weight", q, H}, tensorSpec{p + "self_attn.k_proj.weight", kv, H},
				tensorSpec{p + "self_attn.v_proj.weight", kv, H},
				tensorSpec{p + "mlp.gate_proj.weight", s.FFN, H}, tensorSpec{p + "mlp.up_proj.weight", s.FFN, H})
		}
		ts = append(ts, tensorSpec{p + "self_attn.o_proj.weight", H, q}, tensorSpec{p + "mlp.down_proj.weight", H, s.FFN})
	}
	return ts
}

// identityNorm is the stored norm weight that scales by 1: Gemma's RMSNorm
// multiplies by (1 + w).
func identityNorm(family string) float32 {
	if family == "gemma2" || family == "gemma3" {
		return 0
	}
	return 1
}
