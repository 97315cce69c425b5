package optim

import "testing"

// TestDefaultNoDecayOnLoRAVariants: DoRA's magnitude and modules_to_save
// copies decay as transformers' Trainer decays them (their PEFT parameter
// names match none of its no-decay patterns), under ftune's names and
// under a live PeftModel's; a copied linear's bias does not decay.
func TestDefaultNoDecayOnLoRAVariants(t *testing.T) {
	for name, noDecay := range map[string]bool{
		"model.layers.0.self_attn.q_proj.lora_magnitude_vector":                                 false,
		"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.default.weight": false,
		"model.embed_tokens.weight": false,
		"base_model.model.model.embed_tokens.modules_to_save.default.weight": false,
		"lm_head.weight":                                             false,
		"model.layers.0.self_attn.q_proj.bias":                       true,
		"default/model.layers.0.mlp.down_proj.lora_magnitude_vector": false,
	} {
		if got := DefaultNoDecay(name); got != noDecay {
			t.Errorf("DefaultNoDecay(%q) = %v, transformers: %v", name, got, noDecay)
		}
	}
}
