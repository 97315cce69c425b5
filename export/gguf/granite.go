package gguf

import (
	"fmt"

	"github.com/ftune/ftune/nn"
)

// graniteComputable refuses a Granite that llama.cpp's granite graph
// (src/models/granite.cpp) would compute differently: it rotates whole
// heads (it asserts n_rot == head_dim) over the full context. Its q, k, v,
// o and MLP biases are optional tensors there, so both bias settings
// export.
func graniteComputable(c nn.Config) error {
	switch {
	case c.SlidingWindow > 0:
		return fmt.Errorf("gguf: sliding_window %d: llama.cpp's granite attends over the full context, so its logits would differ from this model's", c.SlidingWindow)
	case c.Rope.Type == "longrope":
		return fmt.Errorf("gguf: rope_type longrope has no llama.cpp equivalent for granite")
	}
	return nil
}

// setGranite writes the four scalars llama.cpp's granite reads
// (llama_model_granite::load_arch_hparams; the converter's GraniteModel
// writes the same from embedding_multiplier, residual_multiplier,
// attention_multiplier and logits_scaling). All four are written, 1 where
// config.json left a multiplier at its default: llama.cpp reads a missing
// attention.scale as 1/√head_dim, which is not Granite's default of 1.
func setGranite(b *Builder, c nn.Config) {
	orOne := func(v float64) float32 {
		if v == 0 {
			return 1
		}
		return float32(v)
	}
	b.Set("granite.embedding_scale", orOne(c.EmbedMultiplier))
	b.Set("granite.residual_scale", orOne(c.ResidualScale))
	b.Set("granite.attention.scale", orOne(c.AttnScale))
	b.Set("granite.logit_scale", orOne(c.LogitsDivisor))
}
