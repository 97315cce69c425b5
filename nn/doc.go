// Package nn holds the Llama-family models (llama, mistral, qwen2, qwen3,
// Gemma 3 text: gemma3_text, with its (1+w) sandwich norms, GeGLU,
// scaled embeddings and local/global layers, gemma3.go; Gemma 2: gemma2,
// the same block without q/k norms, with soft-capped attention scores and
// logits, gemma2.go; and Phi-3, 3.5 and
// 4-mini: phi3, with fused qkv_proj and gate_up_proj, LongRoPE and partial
// rotary, phi3.go; SmolLM3: smollm3, Llama's block with NoPE layers that
// rotate neither queries nor keys, smollm3.go; Granite 3.x dense: granite,
// Llama's block with scaled embeddings, residual branches and logits and
// its own attention scale, granite.go) as
// modules whose parameter names are the Hugging Face keys, their loading
// from Hugging Face folders (config.json + safetensors, sharded or not) and
// generation with a KV cache.
//
// The code follows config.json, not any particular checkpoint: GQA ratios,
// head_dim different from hidden/heads, tied or separate output embeddings,
// q/k/v biases, sliding windows and every RoPE scaling transformers knows
// for these families (default, linear, dynamic NTK, YaRN, Llama-3, LongRoPE), in both
// the transformers v4 (rope_theta, rope_scaling) and v5 (rope_parameters)
// layouts.
//
// Loading is strict where a default would hide a broken folder: the size
// keys (vocab_size, hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads) must be in config.json; weights for layers past
// num_hidden_layers (a truncated model) and tensors the architecture has
// no place for are errors naming them (only what transformers drops on
// purpose passes: rotary inv_freq buffers, a saved lm_head when tied).
// Generate refuses a prompt that fills the context (ErrContextFull) and
// names non-finite logits (ErrNonFinite) instead of sampling from them.
// Model.Source records the folder and its Fingerprint, which adapters
// keep to find their base again.
//
// Models compute through autograd on whichever tensor.Backend their weights
// live on; a nil tape is inference.
package nn
