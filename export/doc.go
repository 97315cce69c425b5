// Package export writes fine-tuned models out of ftune: MergedHF makes a
// Hugging Face folder with a LoRA adapter merged into the base weights,
// which transformers (and nn.Load) load like the base. GGUF files for
// llama.cpp are in package export/gguf, which reads its weights through this
// package's Source.
//
// The merge is done on a copy, one tensor at a time as the writer reaches
// it (so an export holds the model and about one tensor), in float32: W + s·B·A
// is rounded once to the dtype the base file stores that tensor in (bf16
// round-to-nearest-even, as torch's .to(torch.bfloat16)). The model is not
// changed, so an NF4 (QLoRA) base can be exported: its weights are
// dequantized first, and the result's notes say so, since the NF4 error
// stays in the merged weights. Tied embeddings are written once, as
// model.embed_tokens.weight, as transformers saves them.
//
// The folder is written under a temporary name beside the target, with a
// record (ManifestFile) of the files ftune wrote and their SHA-256, and
// swapped into place. A target whose files the record does not all
// account for, unchanged (a record of an older ftune, without hashes,
// accounts for none), or an export of another format, is the user's:
// it is refused, or with Force moved aside and kept; an export never
// deletes a file it did not write, nor one edited since, and says what
// earlier export it replaced. A NaN or Inf in any tensor
// (merged, PEFT, GGUF), or a cancelled context, stops the export and
// leaves the target as it was.
package export
