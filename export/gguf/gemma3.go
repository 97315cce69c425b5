package gguf

import (
	"fmt"

	"github.com/ftune/ftune/nn"
)

// gemma3Pattern returns the period P that llama.cpp's gemma3 reads from
// gemma3.attention.sliding_window_pattern: layer i is local when
// i mod P < P−1 (llama_hparams::set_swa_pattern), which is the layout
// Gemma3TextConfig derives from sliding_window_pattern. 0 means no local
// layer. A model whose layer_types follow no such period, or whose
// query_pre_attn_scalar is not the scale llama.cpp applies, is refused:
// llama.cpp would load it and compute other logits.
func gemma3Pattern(c nn.Config) (int, error) {
	// llama.cpp's gemma3 scales queries by 1/√head_dim, or 1/√(hidden/heads)
	// for its 62-layer (27B) model, and reads no query_pre_attn_scalar.
	want := float64(c.HeadDim)
	if c.NumLayers == 62 {
		want = float64(c.HiddenSize / c.NumHeads)
	}
	if c.QueryPreAttnScalar != 0 && c.QueryPreAttnScalar != want {
		return 0, fmt.Errorf("gguf: query_pre_attn_scalar %g: llama.cpp's gemma3 scales queries by 1/√%g for this model and has no key for another scale, so its logits would differ", c.QueryPreAttnScalar, want)
	}
	if c.OutputBias {
		return 0, fmt.Errorf("gguf: attention_bias true: llama.cpp's gemma3 has no o_proj bias (attn_output.bias), so its logits would differ")
	}
	if c.LocalRope != nil && c.LocalRope.Type != "default" {
		return 0, fmt.Errorf("gguf: local RoPE %q: llama.cpp's gemma3 runs the default RoPE on sliding layers", c.LocalRope.Type)
	}
	if c.SlidingWindow == 0 {
		return 0, nil
	}
	return swaPeriod("gemma3", c)
}

// swaPeriod returns the period P of llama.cpp's
// ARCH.attention.sliding_window_pattern that gives the model's local
// layers: layer i is local when i mod P < P−1, and P = 0 makes every layer
// local (llama_hparams::set_swa_pattern). layer_types that follow no such
// period are refused.
func swaPeriod(arch string, c nn.Config) (int, error) {
	p := 0
	for i, s := range c.SlidingLayers {
		if !s {
			p = i + 1
			break
		}
	}
	for i, s := range c.SlidingLayers {
		if p == 0 && !s || p > 0 && s != (i%p < p-1) {
			return 0, fmt.Errorf("gguf: layer %d is %s: llama.cpp's %s takes local and global layers in a fixed period (%s.attention.sliding_window_pattern), which layer_types does not follow", i, kind(s), arch, arch)
		}
	}
	return p, nil
}

func kind(sliding bool) string {
	if sliding {
		return "sliding_attention"
	}
	return "full_attention"
}

// setGemma3 writes the keys llama.cpp's gemma3 reads beyond the common
// ones (src/models/gemma3.cpp load_arch_hparams): the window, the period
// of local layers and the local RoPE base. The global RoPE (freq_base and
// a linear scaling) is written by setHyperparameters and, as in
// llama.cpp, applies to global layers only.
//
// llama.cpp scales the embeddings by √hidden in float32, where
// transformers casts the factor to the checkpoint's dtype (34 instead of
// 33.94 for gemma-3-1b in bfloat16); llama.cpp's own converter has the
// same difference, and a float32 checkpoint has none.
func setGemma3(b *Builder, c nn.Config) error {
	p, err := gemma3Pattern(c)
	if err != nil {
		return err
	}
	if c.SlidingWindow > 0 {
		b.Set("gemma3.attention.sliding_window", uint32(c.SlidingWindow))
		b.Set("gemma3.attention.sliding_window_pattern", uint32(p))
		if c.LocalRope != nil {
			b.Set("gemma3.rope.freq_base_swa", float32(c.LocalRope.Theta))
		}
	}
	return nil
}

// plusOne returns 1 + w.
func plusOne(w []float32) []float32 {
	out := make([]float32, len(w))
	for i, v := range w {
		out[i] = float32(float64(v) + 1)
	}
	return out
}
