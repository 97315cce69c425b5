package gguf

import (
	"fmt"

	"github.com/ftune/ftune/nn"
)

// gemmaNorms reports whether arch stores Gemma's norms: their own names
// (gemmaBlockNames) and weights written as 1 + w, as llama.cpp's converter
// does for Gemma2Model and Gemma3Model (llama.cpp multiplies by the stored
// weight).
func gemmaNorms(arch string) bool { return arch == "gemma2" || arch == "gemma3" }

// gemma2Pattern checks that llama.cpp's gemma2 (src/models/gemma2.cpp)
// computes this model as transformers does, and returns the period of its
// local layers (gemma2.attention.sliding_window_pattern; 1 = none local).
// llama.cpp's gemma2 always soft-caps (its defaults 50 and 30 when the keys
// are absent), reads the LM head from token_embd (a separate lm_head would
// be an unused tensor) and scales queries by 1/√head_dim, or by
// 1/√(hidden/heads) for its 46-layer (27B) model, reading no
// query_pre_attn_scalar: a model that differs in any of these is refused
// rather than exported to a file that loads and gives other logits.
func gemma2Pattern(c nn.Config) (int, error) {
	want := float64(c.HeadDim)
	if c.NumLayers == 46 {
		want = float64(c.HiddenSize / c.NumHeads)
	}
	if c.QueryPreAttnScalar != want {
		return 0, fmt.Errorf("gguf: query_pre_attn_scalar %g: llama.cpp's gemma2 scales queries by 1/√%g for this model (%d layers) and has no key for another scale, so its logits would differ", c.QueryPreAttnScalar, want, c.NumLayers)
	}
	if c.AttnSoftcap == 0 || c.FinalSoftcap == 0 {
		return 0, fmt.Errorf("gguf: attn_logit_softcapping %g, final_logit_softcapping %g: llama.cpp's gemma2 always soft-caps both (0 here is null, no cap), so its logits would differ", c.AttnSoftcap, c.FinalSoftcap)
	}
	if !c.TieEmbeddings {
		return 0, fmt.Errorf("gguf: tie_word_embeddings false: llama.cpp's gemma2 takes the LM head from token_embd and has no output.weight, so the export would not load there")
	}
	if c.OutputBias || c.AttentionBias {
		return 0, fmt.Errorf("gguf: attention_bias true: llama.cpp's gemma2 has no o_proj bias (attn_output.bias), so its logits would differ")
	}
	if c.LocalRope != nil {
		return 0, fmt.Errorf("gguf: a separate RoPE for local layers: Gemma 2 has one, and llama.cpp's gemma2 is written one")
	}
	if c.SlidingWindow == 0 {
		return 1, nil
	}
	return swaPeriod("gemma2", c)
}

// setGemma2 writes the keys llama.cpp's gemma2 reads beyond the common
// ones (llama_model_gemma2::load_arch_hparams; the converter's Gemma2Model
// writes the same): both soft-caps, the window and the period of the local
// layers (the converter leaves it at llama.cpp's default, 2, which is
// Gemma2Config's; written here so that other layer_types are exported as
// they are).
func setGemma2(b *Builder, c nn.Config) error {
	p, err := gemma2Pattern(c)
	if err != nil {
		return err
	}
	b.Set("gemma2.attn_logit_softcapping", float32(c.AttnSoftcap))
	b.Set("gemma2.final_logit_softcapping", float32(c.FinalSoftcap))
	if c.SlidingWindow > 0 {
		b.Set("gemma2.attention.sliding_window", uint32(c.SlidingWindow))
	}
	b.Set("gemma2.attention.sliding_window_pattern", uint32(p))
	return nil
}
