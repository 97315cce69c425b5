// Package nn holds the Llama-family models (llama, mistral, qwen2) as
// modules whose parameter names are the Hugging Face keys, their loading
// from Hugging Face folders (config.json + safetensors, sharded or not) and
// generation with a KV cache.
//
// The code follows config.json, not any particular checkpoint: GQA ratios,
// head_dim different from hidden/heads, tied or separate output embeddings,
// q/k/v biases, sliding windows and every RoPE scaling transformers knows
// for these families (default, linear, dynamic NTK, YaRN, Llama-3), in both
// the transformers v4 (rope_theta, rope_scaling) and v5 (rope_parameters)
// layouts.
//
// Models compute through autograd on whichever tensor.Backend their weights
// live on; a nil tape is inference.
package nn
