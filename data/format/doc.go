// Package format reads dataset files into normalised examples.
//
// Files are streamed: Open returns a Reader whose Next yields one Example
// at a time, so memory follows the longest record, not the file. Formats:
// JSONL (.jsonl), JSON arrays of objects (.json, streamed element by
// element with json.Decoder), CSV and TSV with a header row, plain text
// (.txt, .md: one example per line, per paragraph or per file) and parquet
// (read in row batches by data/format/parquet, which a program links by a
// blank import; without it a .parquet file is ErrUnsupported, naming the
// import). RegisterFileKind is how such a package plugs in.
//
// Record shapes, detected from the first record or set with a Mapping that
// can also rename columns:
//
//	alpaca        {"instruction", "input", "output"}
//	chat          {"messages": [{"role", "content"}]}
//	sharegpt      {"conversations": [{"from": "human"|"gpt"|"system", "value"}]}
//	completion    {"text"}
//	input/output  {"input","output"} or prompt/completion, prompt/response, question/answer
//	preference    {"prompt", "chosen", "rejected"}, text or lists of messages (TRL's)
//	unpaired_preference {"prompt", "completion", "label": true|false} (TRL's, KTO's data)
//
// All become an Example with Messages (roles system, user, assistant) or
// Text, and a Source "file:line" that later stages use in their messages.
//
// Bad input never panics: a malformed record, a missing column, invalid
// UTF-8 (which encoding/json would silently replace), an unknown role or an
// empty file give a *PosError "file:line:column: what was expected" that
// wraps one of the Err* sentinels. With Options.Skip, bad records are
// counted in the Report instead. FuzzJSONL keeps the JSONL reader honest.
package format
