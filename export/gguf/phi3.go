package gguf

import (
	"fmt"

	"github.com/ftune/ftune/nn"
)

// phi3Computable refuses a Phi-3 model that llama.cpp's phi3
// (src/models/phi3.cpp) would not load or would compute differently from:
// it builds attn_output as [hidden, hidden] and the query part of attn_qkv
// as hidden rows, so heads·head_dim must equal hidden_size (true of every
// released Phi-3, 3.5 and 4-mini).
func phi3Computable(c nn.Config) error {
	if c.NumHeads*c.HeadDim != c.HiddenSize {
		return fmt.Errorf("gguf: heads × head_dim = %d×%d ≠ hidden_size %d: llama.cpp's phi3 sizes attn_output and the query rows of attn_qkv by hidden_size, so the export would not load there",
			c.NumHeads, c.HeadDim, c.HiddenSize)
	}
	return nil
}

// setPhi3 writes what Phi3MiniModel (convert_hf_to_gguf.py,
// conversion/phi.py) adds for the phi3 architecture: the sliding window (0
// when config.json has none; llama.cpp reads it and, for now, disables
// Phi's sliding window with a warning at load, so a Phi-3-mini-4k export
// attends over the whole context there where transformers and ftune use
// the window of 2047), and for LongRoPE the pretraining length and the
// attention factor. The factors themselves are the rope_factors_long and
// rope_factors_short tensors (phi3RopeFactors); rope.dimension_count is
// the rotated part of a head (partial_rotary_factor), written by
// setHyperparameters.
//
// The attention factor written is the one ftune computes (transformers'
// rope attention_factor when config.json gives one, else
// sqrt(1 + ln(factor)/ln(original)), factor being the rope object's
// "factor" or else max_position_embeddings / original). The converter
// always derives it from max/original; the two agree unless config.json
// sets attention_factor or factor, and then this file follows
// transformers.
//
// llama.cpp multiplies cos and sin by that factor for short and long
// factors alike, as transformers does; it picks the long factors when the
// context (n_ctx) exceeds the pretraining length, where transformers looks
// at the positions of each forward pass (see nn.Config.InvFreq).
func setPhi3(b *Builder, c nn.Config) error {
	b.Set("phi3.attention.sliding_window", uint32(c.SlidingWindow))
	if c.Rope.Type != "longrope" {
		return nil
	}
	_, attn := c.InvFreq(0)
	b.Set("phi3.rope.scaling.original_context_length", uint32(c.Rope.OriginalMaxPositions))
	b.Set("phi3.rope.scaling.attn_factor", float32(attn))
	return nil
}

// addPhi3RopeFactors writes LongRoPE's per-frequency divisors as the
// converter does: rope_factors_long.weight and rope_factors_short.weight,
// F32, one per rotated pair (llama.cpp divides each frequency by them).
func addPhi3RopeFactors(b *Builder, c nn.Config) error {
	if c.Rope.Type != "longrope" {
		return nil
	}
	for _, f := range []struct {
		name string
		v    []float64
	}{{"rope_factors_long.weight", c.Rope.LongFactor}, {"rope_factors_short.weight", c.Rope.ShortFactor}} {
		v := make([]float32, len(f.v))
		for i, x := range f.v {
			v[i] = float32(x)
		}
		if err := b.AddTensor(f.name, []int{len(v)}, F32, v); err != nil {
			return err
		}
	}
	return nil
}

// Notes lists what llama.cpp will compute differently from ftune (and
// transformers) for a model exported with this package, one sentence each,
// for the caller to show: the file itself is what llama.cpp's own
// converter writes, so these are differences of llama.cpp's runtime. Today
// they concern Phi-3: a sliding window that bites (llama.cpp disables
// Phi's), and LongRoPE's choice of factors (per context in llama.cpp, per
// sequence in transformers).
func Notes(c nn.Config) []string {
	if c.ModelType != "phi3" {
		return nil
	}
	var out []string
	if c.SlidingWindow > 0 && c.SlidingWindow < c.MaxPositions {
		out = append(out, fmt.Sprintf("llama.cpp disables Phi-3's sliding window (it says so when loading): past %d tokens it attends over the whole context, where this model (as transformers) sees the last %d only", c.SlidingWindow, c.SlidingWindow))
	}
	if c.Rope.Type == "longrope" {
		out = append(out, fmt.Sprintf("llama.cpp picks LongRoPE's long factors for every token when its context (n_ctx) exceeds %d, the short ones otherwise; transformers and ftune pick per sequence (long only once a sequence passes %d tokens), so with n_ctx > %d shorter sequences get other logits in llama.cpp",
			c.Rope.OriginalMaxPositions, c.Rope.OriginalMaxPositions, c.Rope.OriginalMaxPositions))
	}
	return out
}
