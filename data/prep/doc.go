// Package prep turns normalised examples (data/format) into token ids and
// labels, and those into training rows.
//
//   - Preprocessor.Tokenize: chat examples are rendered with a chat
//     template; by default only assistant turns are learnt (labels are
//     IgnoreIndex elsewhere), each as the whole conversation's rendering
//     writes it (a thinking template's earlier answers without their
//     <think> block, the last with it), found by marking where each answer
//     ends (spans.go); completion text is learnt in full. EOS is appended per
//     example; over-long examples are truncated or dropped and counted.
//   - Preprocessor.TokenizeAll runs on GOMAXPROCS workers (Workers) with
//     the result of the serial loop, tokenizeSerial, which the tests
//     compare it with (parallel.go); Progress hears how far it is, and
//     SkipBad skips (and counts) examples over a limit of their own, such
//     as a chat template's rendering budget, rather than stop.
//     TokenizeEach hands the documents to the caller as they are
//     tokenised, a window of examples at a time, for callers that count
//     them and let them go (data validate).
//   - Pack puts documents into fixed-length rows with per-document position
//     ids and segment ids; Pad makes one padded row per document; both lay
//     out labels so that the loss of packed rows equals that of padded rows.
//   - Rand, Shuffle and SplitRatio make every random choice reproducible
//     from a seed. Batching is the trainer's (train.RowLoader, which takes
//     these rows as they are).
//   - TokenizeAllOutcomes also says what became of each example
//     (Tokenization), and Tokenization.Select takes the documents and
//     Stats of any share of the examples (a held-out split) as tokenising
//     that share alone would give them (select.go).
//   - WriteCache and OpenCache store tokenised documents in a memory-mapped
//     file keyed by the tokenizer's, template's, options' and data's
//     hashes and ended by a CRC-32 of its contents, checked on opening;
//     WriteTokenization records every example's outcome and key with
//     them, so that a cache of a whole file gives the counts and the
//     documents of any split of it.
//
// prep depends on the tokenizer and template only through the Encoder and
// Renderer interfaces.
package prep
