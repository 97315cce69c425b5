// Package data is the root of ftune's data pipeline. It knows nothing of
// tensors: every stage consumes and yields plain Go values, and the trainer
// turns the final token-id rows into tensors.
//
// The stages, each in its own package:
//
//   - data/tokenizer: Hugging Face and tiktoken tokenizers (text -> ids).
//   - data/chat: Jinja and built-in chat templates (messages -> text).
//   - data/format: streaming readers for JSONL, JSON arrays, CSV/TSV, plain
//     text and parquet files; they normalise alpaca, chat, sharegpt,
//     completion and input/output shapes into one format.Example.
//   - data/prep: examples -> token ids and labels (response-only masking),
//     truncation, packing with document boundaries, padding, length-grouped
//     batches, deterministic shuffling and splits, and the memory-mapped token
//     cache that training reads.
//   - data/subject: one dataset folder per subject (train/val/test files and
//     subject.yaml), validation reports and multi-subject mixing.
//   - data/augment: NEFTune noise, prompt token dropout, instruction phrasing
//     rotation, multiple-choice option shuffling, near-duplicate removal.
//
// data/prep depends on small interfaces (prep.Encoder, prep.Renderer) rather
// than on the tokenizer and template packages, so each side can be tested on
// its own and the cache can record which tokenizer and template made it.
package data
