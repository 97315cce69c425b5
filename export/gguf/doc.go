// Package gguf reads and writes GGUF files, the format llama.cpp loads:
// whole models (WriteModel) and LoRA adapters (WriteLoRA).
//
// The file layout is GGUF v3 as ggml's docs/gguf.md defines it: a header
// ("GGUF", version, tensor and metadata counts), typed metadata pairs, a
// tensor directory (name, dimensions fastest-first, ggml type, offset), then
// the data, each tensor at a multiple of general.alignment (32 by default)
// from the start of an aligned data section. Read checks every count,
// length and offset against the file size before allocating, so a corrupt
// or hostile file gives an error wrapping ErrFormat, never a panic or a
// huge allocation.
//
// Tensor types: F32, F16, BF16, the block quantizations Q8_0, Q4_0, Q4_1, Q5_0
// and Q5_1, the k-quants Q2_K, Q3_K, Q4_K, Q5_K and Q6_K, and the
// non-linear IQ4_NL and IQ4_XS, byte for byte as ggml's quantizers write
// them (the reference quantize_row_*_ref ones; for IQ4, quantize_iq4_*,
// which llama-quantize calls); quant.go, quantk.go and quantiq4.go state
// the block layouts. The file types Q4_0, Q4_1, Q5_0, Q5_1, Q2_K,
// Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K, IQ4_NL and IQ4_XS are
// llama-quantize's mixes of those types,
// chosen per tensor as it chooses (quantmix.go): such a file equals
// llama-quantize's quantization of ftune's F32 file, type for type and
// byte for byte. With an importance
// matrix (Imatrix: llama.cpp's imatrix files, read and written here;
// package export/imatrix computes one) the block types are quantized by
// ggml's weighted quantizers instead (quantw.go), and the file equals
// llama-quantize --imatrix's.
//
// Models are written the way llama.cpp's convert_hf_to_gguf.py writes them
// (read, not copied): llama.cpp tensor names (token_embd, blk.N.attn_q,
// ..., output_norm, output), the rotary permutation of q_proj/k_proj rows
// for the "llama" architecture (Llama, Mistral) and none for "qwen2", the
// hyperparameters under "<arch>.", RoPE scaling keys (linear, yarn) or the
// rope_freqs tensor (llama3) or, for "phi3", the fused attn_qkv and ffn_up
// with LongRoPE's rope_factors_long/short tensors (phi3.go), and the tokenizer: byte-level BPE as model
// "gpt2" with merges and a pre-tokenizer name matched from the Split
// pattern (gpt-2, qwen2, llama-bpe: names llama.cpp's llama-vocab.cpp accepts), SentencePiece-style BPE as model
// "llama" with scores. 1-D tensors stay F32; a weight whose rows do not
// fill whole blocks falls back to F16, as in the converter.
//
// LoRA adapters follow convert_lora_to_gguf.py: general.type "adapter",
// adapter.type "lora", adapter.lora.alpha, and per weight W the pair
// W.lora_a / W.lora_b. PEFT scales that differ from llama.cpp's alpha/r
// (rsLoRA, rank_pattern, alpha_pattern) are folded into lora_b.
//
// Every file is written atomically (temporary file, then rename).
package gguf
