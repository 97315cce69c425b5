// Package format reads dataset files into normalised examples.
//
// Files are streamed: Open returns a Reader whose Next yields one Example
// at a time, so memory follows the longest record, not the file. Formats:
// JSONL (.jsonl, .ndjson), JSON (.json), CSV and TSV with a header row,
// plain text (.txt, .md: one example per line, per paragraph or per file;
// CRLF line ends read as LF, as Python's text mode reads them) and parquet
// (read in row batches by data/format/parquet, which a program links by a
// blank import; without it a .parquet file is ErrUnsupported, naming the
// import). RegisterFileKind is how such a package plugs in.
//
// A .json file is JSON Lines when its first line is an object and another
// object follows on a later line (what datasets' Dataset.to_json writes by
// default; told from at most its first 8 MiB, and said in Report.Notes).
// Otherwise it is JSON: an array of objects, streamed element by element
// with json.Decoder; an object holding one list of records under a key
// ({"data": [...]}, the datasets-server API's {"rows": [{"row": {...}}]}),
// streamed the same way, the key said in Report.Notes (several such lists,
// a split per key, are refused); or one object, one record.
//
// Record shapes, detected from the first record or set with a Mapping that
// can also rename columns:
//
//	alpaca        {"instruction", "input", "output"}, "history": [[instruction, response], ...] (LLaMA-Factory's)
//	chat          {"messages": [{"role", "content"}]}
//	sharegpt      {"conversations": [{"from": "human"|"gpt"|"system", "value"}]}
//	completion    {"text"}
//	input/output  {"input","output"} or prompt/completion, prompt/response, question/answer
//	preference    {"prompt", "chosen", "rejected"}, text or lists of messages (TRL's);
//	              instruction and input (LLaMA-Factory's) or question (Axolotl's) as the prompt;
//	              {"conversations", "chosen": {"from": "gpt", "value"}, "rejected": {...}}
//	              (LLaMA-Factory's ShareGPT; or "messages" and {"role", "content"}) as a
//	              conversation and the assistant's answers
//	unpaired_preference {"prompt", "completion", "label": true|false} (TRL's, KTO's data);
//	              alpaca, messages or conversations with "kto_tag" (LLaMA-Factory's)
//
// A message's content may be a list of parts (OpenAI's [{"type": "text",
// "text"}, ...], the Responses API's "input_text" and "output_text"): its
// text parts are joined with nothing between them, as chat templates
// render them; a part of another type (an image, audio, a file) is
// refused, as ftune trains text models. Roles have other tools' names
// too: developer (OpenAI's) is system; chatgpt, bing and bard
// (ShareGPT's) are assistant; prompter (OpenAssistant's) is user. Both
// are said once a file in Report.Notes. Axolotl's template-free
// {"segments": [{"label", "text"}]} records are refused (segments.go).
//
// A message's "weight": 0 (OpenAI's) or "train": false (Axolotl's) leaves
// it out of the loss. A record whose shape was detected may not hold text
// in a field the shape does not read (a question's context): it is
// refused, naming the field, unless the field's name says it is metadata
// (id, source, category, url, ...) or its text repeats what is read.
//
// All become an Example with Messages (roles system, user, assistant,
// tool) or Text, and a Source "file:line" that later stages use in their
// messages.
//
// Tool calling (function calling) data is read into Message.ToolCalls,
// Message.ToolCallID and Name, and Example.Tools:
//
//	OpenAI, TRL, transformers  {"messages": [..., {"role": "assistant", "content": "" | null | absent,
//	                             "tool_calls": [{"id", "type": "function", "function": {"name", "arguments"}}]},
//	                             {"role": "tool", "tool_call_id", "name", "content"}, ...], "tools": [...]}
//	OpenAI legacy              {"function_call": {"name", "arguments"}} and role "function"; "functions": [schema, ...]
//	LLaMA-Factory ShareGPT     {"conversations": [..., {"from": "function_call", "value": "<JSON of a call or a list>"},
//	                             {"from": "observation", "value"}, ...], "tools": "<JSON list>"}
//
// Arguments are an object or a string holding one (OpenAI's); a call may
// leave out the "function" wrapper ({"name", "arguments"}, as
// transformers' templates accept). Arguments and tools are stored as
// compact JSON text with their keys in the order written (numbers as
// written, strings re-encoded: "é" and "é" are the same text);
// "functions" are wrapped as tools ({"type": "function", "function":
// schema}). Tools are a list or a string holding one, on any record whose
// example is a conversation (chat, sharegpt, alpaca, input/output,
// conversational prompt/completion and preference records); [] and "" are
// none; a text example (completion, text preference) with tools is
// refused. Roles tool, function, ipython (Llama 3.1) and observation
// (LLaMA-Factory) are tool results. Validate refuses calls on other than
// assistant messages, a tool_call_id on other than tool messages (a name,
// OpenAI's participant name, may be on any: the template sees it), a
// tool result not after an assistant message with calls (and other
// results), or naming a call id that message does not make; an assistant
// message with calls and no content is an answer. Two function_call turns
// in a row are refused (parallel calls are one turn holding a list).
//
// Bad input never panics: a malformed record, a missing column, invalid
// UTF-8 (which encoding/json would silently replace), an unknown role, a
// number or boolean where text is expected (JSON and parquet say what is
// text; a CSV cell is text), a null content but in a message that calls
// tools, or an empty file give a *PosError "file:line:column: what was
// expected" that wraps one of the Err* sentinels. With Options.Skip, bad records are
// counted in the Report instead. FuzzJSONL keeps the JSONL reader honest.
package format
