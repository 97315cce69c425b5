// Package tokenizer turns text into token ids and back exactly as Hugging Face
// tokenizers does, for the tokenizer.json files that Llama-family models ship.
//
// The pipeline follows tokenizers' own: added (special) tokens are matched in
// the raw text first, the rest is normalized, pre-tokenized into pieces, each
// piece is split by the model (BPE with a rank map and priority merging), the
// post-processor adds BOS/EOS, and decoders turn ids back into text. Every
// stage keeps an alignment from the bytes it produced to the bytes of the
// original text, so Encoding.Offsets match tokenizers' (character offsets,
// as the Python binding reports them).
//
// Supported: model BPE (byte-level like GPT-2, Llama-3 and Qwen, and the
// SentencePiece style with byte_fallback like Llama-2, Mistral and
// TinyLlama); normalizers NFC, NFD, NFKC, NFKD, Lowercase, Strip,
// StripAccents, Replace, Prepend, BertNormalizer, Sequence; pre-tokenizers
// ByteLevel, Split (regular expressions with look-around through
// github.com/dlclark/regexp2), Digits, Metaspace, Whitespace,
// WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit,
// Sequence; post-processors TemplateProcessing, ByteLevel, RobertaProcessing,
// BertProcessing, Sequence; decoders ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip, WordPiece, BPEDecoder, Sequence. Anything else
// is reported by Load as an error wrapping ErrUnsupported that names the
// JSON field, never a panic. The tiktoken encodings (cl100k_base,
// o200k_base, r50k_base, p50k_base) are Tokenizers too (Tiktoken), built
// from the rank files compiled into github.com/pkoukk/tiktoken-go-loader, so
// nothing is downloaded at run time; tests check them against tiktoken-go.
//
// Use: Load(dir) reads tokenizer.json and tokenizer_config.json (BOS, EOS,
// PAD, add_bos_token/add_eos_token, in the transformers v4 and v5 layouts);
// Encode gives ids, tokens and offsets; Decode and NewStreamDecoder turn ids
// back into text, the latter one id at a time for generation without ever
// emitting part of a UTF-8 character; Hash identifies the tokenizer for
// token caches. A Tokenizer is safe for concurrent use. The "truncation"
// and "padding" sections of tokenizer.json are ignored on purpose: the data
// pipeline truncates and pads (tokenizers would apply them inside encode).
//
// Speed: pre-tokenizer patterns are run by regexp2 (a backtracking engine,
// about 2 MB/s), except the GPT-2, cl100k/Llama-3 and Qwen patterns, which
// have hand-written scanners (fastsplit.go) checked against regexp2 by a
// test and a fuzzer; BPE merges use a rank map and a heap, and words are
// cached. SentencePiece-style files, which have no pre-tokenizer, are split
// before each "▁" when the vocabulary proves no token can cross it.
//
// We own the BPE rather than wrapping github.com/sugarme/tokenizer: v0.3.0
// panics while loading Qwen3's and Llama-3's files (Go's regexp rejects the
// look-ahead in their Split pattern) and does not match added tokens written
// inside the text; the parts that matter for exactness (alignment through
// every stage, added-token extraction, merge priority) are the parts that
// would have to be rewritten anyway, and the whole pipeline is small.
//
// tokenizer.json is untrusted input (it comes with a downloaded model), so
// each Encode and Decode call is bounded (budget.go): a normalizer or
// decoder may make at most 16 times its input plus 64 bytes, after every
// stage of a Sequence, and the patterns run by regexp2 may take 1 s plus
// 50 µs a byte of input in all. Past a bound the call fails with an error
// wrapping ErrLimit that names the file and the component; real tokenizers
// stay far inside them.
//
// Input text must be valid UTF-8: Encode returns ErrInvalidUTF8 with the byte
// offset of the first bad byte (Python strings cannot hold invalid UTF-8, so
// tokenizers has no behaviour to copy). Decode replaces byte sequences that
// do not form UTF-8 with U+FFFD, one per maximal invalid subpart, as Rust's
// String::from_utf8_lossy does.
package tokenizer
