// Command ggufcheck supports scripts/check-gguf.sh, which checks our GGUF
// files with a reader we did not write (llama.cpp's gguf-py):
//
//	ggufcheck tiny OUTDIR [MODELDIR]   export the model (default: the shipped
//	                                   tiny-base) as F32, F16, Q8_0, Q4_0 and
//	                                   the ten k-quant mixes (Q2_K … Q6_K)
//	                                   and a random LoRA adapter
//	ggufcheck same FILE OTHER          check that two model files hold the
//	                                   same tensors, type for type and byte
//	                                   for byte (ftune's k-quant file against
//	                                   llama-quantize's quantization of
//	                                   ftune's F32 file), and count the types
//	ggufcheck dump FILE                print, as JSON, what our reader sees:
//	                                   metadata keys and types, and per tensor
//	                                   its type, dimensions, first values and
//	                                   sums after dequantization
//	ggufcheck reference OUTDIR [MODELDIR]
//	                                   what `tiny` writes, plus the same
//	                                   adapter merged into a Hugging Face
//	                                   folder (merged/) and reference.json:
//	                                   prompt ids, our tokenization of a text,
//	                                   and our float32 logits of the base and
//	                                   of the base with the adapter, for
//	                                   llama.cpp and transformers to match
package main
