package gguf

import (
	"fmt"

	"github.com/ftune/ftune/nn"
)

// smollm3NoRopeStep is llama.cpp's n_no_rope_layer_step for smollm3
// (src/models/smollm3.cpp): layer il rotates unless (il+1) % 4 == 0. The
// file carries no key for it and llama.cpp reads none, so only models
// whose NoPE layers fall there (SmolLM3-3B's pattern, and SmolLM3Config's
// default) compute the same in llama.cpp.
const smollm3NoRopeStep = 4

// smollm3Computable refuses a SmolLM3 that llama.cpp's smollm3 graph would
// compute differently or not load: its NoPE layers are fixed at every
// fourth, and it creates no bias tensors, no rope_freqs and no window.
func smollm3Computable(c nn.Config) error {
	for i := 0; i < c.NumLayers; i++ {
		nope := c.NoRopeLayers != nil && c.NoRopeLayers[i]
		if want := (i+1)%smollm3NoRopeStep == 0; nope != want {
			return fmt.Errorf("gguf: no_rope_layers: layer %d is a %s layer; llama.cpp's smollm3 makes every %dth layer, and only those, a NoPE layer, so its logits would differ from this model's",
				i, map[bool]string{true: "NoPE", false: "RoPE"}[nope], smollm3NoRopeStep)
		}
	}
	switch {
	case c.AttentionBias || c.OutputBias || c.MLPBias:
		return fmt.Errorf("gguf: attention_bias or mlp_bias true: llama.cpp's smollm3 has no bias tensors, so the export would not load there")
	case c.SlidingWindow > 0:
		return fmt.Errorf("gguf: use_sliding_window with sliding_window %d: llama.cpp's smollm3 attends over the full context, so its logits would differ from this model's", c.SlidingWindow)
	case c.Rope.Type == "llama3":
		return fmt.Errorf("gguf: rope_type llama3: llama.cpp's smollm3 reads no rope_freqs factors, so its logits would differ from this model's")
	}
	return nil
}
