package gguf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ftune/ftune/nn"
)

// Architecture returns llama.cpp's architecture name for a Hugging Face
// model_type, and whether its converter reverses the Q/K rotary layout.
//
// llama.cpp's convert_hf_to_gguf.py converts LlamaForCausalLM and
// MistralForCausalLM with its LlamaModel class (architecture "llama",
// undo_permute = True) and Qwen2ForCausalLM with Qwen2Model (architecture
// "qwen2", no permutation: llama.cpp runs qwen2 with NEOX-style RoPE, which
// is the Hugging Face layout, and llama with "normal" RoPE on interleaved
// pairs, which is what the permutation produces). Qwen3ForCausalLM goes
// through Qwen3Model (architecture "qwen3", NEOX RoPE as qwen2, no
// permutation; q_norm and k_norm become attn_q_norm and attn_k_norm).
// Gemma3ForCausalLM (gemma3_text) goes through Gemma3Model (architecture
// "gemma3", NEOX RoPE, no permutation; its four norms per layer have their
// own names, gemmaBlockNames, and their weights are stored as 1 + w).
// Phi3ForCausalLM goes through Phi3MiniModel (architecture "phi3", NEOX
// RoPE, no permutation; the fused qkv_proj and gate_up_proj are written as
// they are, attn_qkv and ffn_up, which llama.cpp splits in the same order).
// Gemma2ForCausalLM goes through Gemma2Model (architecture "gemma2", the
// same norms, names and 1 + w; no q/k norms). SmolLM3ForCausalLM goes
// through SmolLM3Model, a LlamaModel (architecture "smollm3", Llama's
// tensors and permutation; its NoPE layers are fixed in llama.cpp,
// smollm3Computable). GraniteForCausalLM goes through GraniteModel, a
// LlamaModel (architecture "granite", Llama's tensors and permutation, four
// scalars of its own: setGranite).
func Architecture(modelType string) (arch string, permuteQK bool, err error) {
	switch modelType {
	case "llama", "mistral":
		return "llama", true, nil
	case "qwen2":
		return "qwen2", false, nil
	case "qwen3":
		return "qwen3", false, nil
	case "gemma3_text":
		return "gemma3", false, nil
	case "gemma2":
		return "gemma2", false, nil
	case "phi3":
		return "phi3", false, nil
	case "smollm3":
		return "smollm3", true, nil
	case "granite":
		return "granite", true, nil
	}
	return "", false, fmt.Errorf("gguf: model_type %q has no GGUF export (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3, smollm3, granite)", modelType)
}

// checkComputable refuses a model whose settings the llama.cpp
// architecture would not compute, rather than write a file that loads and
// gives other logits (or fails to load in llama.cpp only). llama.cpp's
// qwen3 (src/models/qwen3.cpp) has no attn_output.bias tensor, and
// neither its qwen2 nor its qwen3 computes sliding-window attention.
func checkComputable(arch string, c nn.Config) error {
	if arch == "gemma3" {
		_, err := gemma3Pattern(c)
		return err
	}
	if arch == "phi3" {
		return phi3Computable(c)
	}
	if arch == "gemma2" {
		_, err := gemma2Pattern(c)
		return err
	}
	if arch == "smollm3" {
		return smollm3Computable(c)
	}
	if arch == "granite" {
		return graniteComputable(c)
	}
	if arch != "qwen2" && arch != "qwen3" {
		return nil
	}
	if arch == "qwen3" && c.OutputBias {
		return fmt.Errorf("gguf: attention_bias true: llama.cpp's qwen3 has no o_proj bias (attn_output.bias), so the export would not load there")
	}
	if c.SlidingWindow > 0 {
		return fmt.Errorf("gguf: use_sliding_window with sliding_window %d: llama.cpp's %s attends over the full context, so its logits would differ from this model's", c.SlidingWindow, arch)
	}
	return nil
}

// TensorName maps a Hugging Face parameter name to llama.cpp's for the
// llama, qwen2 and qwen3 architectures.
func TensorName(hf string) (string, error) { return TensorNameFor("llama", hf) }

// TensorNameFor maps a Hugging Face parameter name to llama.cpp's name in
// architecture arch (gemma3 names its norms differently).
func TensorNameFor(arch, hf string) (string, error) {
	switch hf {
	case "model.embed_tokens.weight":
		return "token_embd.weight", nil
	case "model.norm.weight":
		return "output_norm.weight", nil
	case "lm_head.weight":
		return "output.weight", nil
	}
	rest, ok := strings.CutPrefix(hf, "model.layers.")
	if !ok {
		return "", fmt.Errorf("gguf: no llama.cpp name for tensor %q", hf)
	}
	idx, rest, ok := strings.Cut(rest, ".")
	if _, err := strconv.Atoi(idx); !ok || err != nil {
		return "", fmt.Errorf("gguf: no llama.cpp name for tensor %q", hf)
	}
	module, suffix := rest, ""
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		module, suffix = rest[:i], rest[i:]
	}
	short, ok := blockNames[module]
	if g, isGemma := gemmaBlockNames[module]; gemmaNorms(arch) && isGemma {
		short, ok = g, true
	}
	if !ok {
		return "", fmt.Errorf("gguf: no llama.cpp name for tensor %q", hf)
	}
	return "blk." + idx + "." + short + suffix, nil
}

// blockNames maps a decoder layer's module path to llama.cpp's tensor name
// (gguf-py tensor_mapping.py, MODEL_TENSOR names in constants.py).
var blockNames = map[string]string{
	"input_layernorm":          "attn_norm",
	"post_attention_layernorm": "ffn_norm",
	"self_attn.q_proj":         "attn_q",
	"self_attn.k_proj":         "attn_k",
	"self_attn.v_proj":         "attn_v",
	"self_attn.o_proj":         "attn_output",
	"self_attn.q_norm":         "attn_q_norm",
	"self_attn.k_norm":         "attn_k_norm",
	"mlp.gate_proj":            "ffn_gate",
	"mlp.up_proj":              "ffn_up",
	"mlp.down_proj":            "ffn_down",
	"self_attn.qkv_proj":       "attn_qkv", // Phi-3
	"mlp.gate_up_proj":         "ffn_up",   // Phi-3: gate half first, as llama.cpp's fused SwiGLU reads it
}

// gemmaBlockNames are Gemma 3's norms (gguf-py tensor_mapping.py): there
// post_attention_layernorm normalises the attention output (post_attention_norm; llama-arch.cpp LLM_TENSOR_ATTN_POST_NORM)
// and pre_feedforward_layernorm is the MLP's input norm (ffn_norm).
var gemmaBlockNames = map[string]string{
	"post_attention_layernorm":   "post_attention_norm",
	"pre_feedforward_layernorm":  "ffn_norm",
	"post_feedforward_layernorm": "post_ffw_norm",
}

// PermuteQK reorders the rows of a q_proj or k_proj weight (or bias) from
// Hugging Face's rotary layout to the one llama.cpp's "llama" architecture
// expects, as convert_hf_to_gguf.py's LlamaModel.permute does: within each
// head of headDim rows, Hugging Face rotates row i with row i+headDim/2
// (rotate_half), llama.cpp rotates rows 2i and 2i+1. So new row h·d + 2i + j
// is old row h·d + j·d/2 + i (j ∈ {0,1}, i < d/2). w is [heads·headDim,
// cols] row-major; it returns a new slice.
func PermuteQK(w []float32, heads, cols int) ([]float32, error) {
	return permuteQK(w, heads, cols, false)
}

// UnpermuteQK is PermuteQK's inverse (llama.cpp layout back to Hugging
// Face's), for reading exported files back.
func UnpermuteQK(w []float32, heads, cols int) ([]float32, error) {
	return permuteQK(w, heads, cols, true)
}

// permuteQK moves row h·d + j·d/2 + i to h·d + 2i + j, or back when
// inverse.
func permuteQK(w []float32, heads, cols int, inverse bool) ([]float32, error) {
	if heads <= 0 || cols <= 0 || len(w)%(heads*cols) != 0 {
		return nil, fmt.Errorf("gguf: cannot permute %d values as %d heads of rows of %d", len(w), heads, cols)
	}
	d := len(w) / cols / heads
	if d%2 != 0 {
		return nil, fmt.Errorf("gguf: head dimension %d is odd; rotary pairs need an even one", d)
	}
	out := make([]float32, len(w))
	for h := 0; h < heads; h++ {
		for i := 0; i < d/2; i++ {
			for j := 0; j < 2; j++ {
				hf, cpp := (h*d+j*d/2+i)*cols, (h*d+2*i+j)*cols
				src, dst := hf, cpp
				if inverse {
					src, dst = cpp, hf
				}
				copy(out[dst:dst+cols], w[src:src+cols])
			}
		}
	}
	return out, nil
}
