// Command ggufcheck supports scripts/check-gguf.sh, which checks our GGUF
// files with a reader we did not write (llama.cpp's gguf-py):
//
//	ggufcheck tiny OUTDIR [MODELDIR]   export the model (default: the shipped
//	                                   tiny-base) as F32, F16, Q8_0 and Q4_0
//	                                   GGUF files and a random LoRA adapter
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
