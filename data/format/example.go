package format

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Role of a chat message after normalisation. Every reader maps the names
// found in files (sharegpt's human/gpt, ...) onto these four.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	// RoleTool is a function's result, answering an assistant's tool call.
	RoleTool = "tool"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ReasoningContent is an assistant turn's thinking, read from a
	// message's "reasoning_content" (what transformers' chat templates
	// read: Qwen3 writes it in a <think> block), or from "reasoning" or
	// "thinking" as other datasets name it. Empty means absent. Only
	// assistant messages may have it.
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// ToolCalls are the functions an assistant message calls (OpenAI's
	// and transformers' tool_calls), in order; the message's Content may
	// then be empty.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID and Name are a tool message's: the id of the call it
	// answers (tool_call_id) and the function's name, each empty when the
	// record gives none.
	ToolCallID string `json:"tool_call_id,omitempty"`
	Name       string `json:"name,omitempty"`
	// NoLoss leaves an assistant message out of the loss: it stays in
	// the conversation as context, and is not learnt. A message's
	// "weight": 0 sets it (OpenAI's chat fine-tuning format; 1, or no
	// weight, learns the message), as does "train": false (Axolotl's).
	NoLoss bool `json:"-"`
	// Context marks an assistant message of a prompt/completion record's
	// prompt (TRL's conversational prompt-completion layout): NoLoss too,
	// as TRL's completion mask leaves it, but no weight the user gave, so
	// train_on_inputs, which learns every token, learns it without a
	// conflict.
	Context bool `json:"-"`
}

// Equal reports whether m and o are the same message, field by field.
func (m Message) Equal(o Message) bool {
	return m.Role == o.Role && m.Content == o.Content && m.ReasoningContent == o.ReasoningContent &&
		slices.Equal(m.ToolCalls, o.ToolCalls) && m.ToolCallID == o.ToolCallID && m.Name == o.Name &&
		m.NoLoss == o.NoLoss && m.Context == o.Context
}

// ToolCall is one function call of an assistant message.
type ToolCall struct {
	// ID is the call's id, empty when the record gives none.
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// Arguments is a JSON object, as written (its keys in their order); a
	// record's arguments given as a string holding a JSON object (OpenAI's
	// files) are that object.
	Arguments string `json:"arguments"`
}

// Example is one training example, normalised from any file shape.
// Exactly one of Messages (chat, alpaca, input/output shapes) and Text
// (completion shape, plain text) is set. A preference record (shape
// preference) has Chosen and Rejected too: Messages or Text is then the
// prompt, and each completion continues it in the same form. An unpaired
// preference record (shape unpaired_preference, KTO's data) has one of
// them: Chosen when its label says the completion is desirable, Rejected
// when it says it is not.
type Example struct {
	Messages []Message `json:"messages,omitempty"`
	Text     string    `json:"text,omitempty"`
	// Tools are the functions the conversation may call: a JSON list of
	// their schemas as written (a record's "tools"), for templates that
	// show them to the model; empty when the record gives none.
	Tools    string `json:"tools,omitempty"`
	Chosen   *Reply `json:"chosen,omitempty"`
	Rejected *Reply `json:"rejected,omitempty"`
	// TextPair marks Messages read from a text prompt/completion record
	// (shape input_output with text in both fields: TRL's standard
	// prompt-completion layout): the prompt as the user's message, the
	// completion as the assistant's, after the record's system prompt
	// when it has one. A chat template renders them as any conversation;
	// without one (data.template none) they are joined as plain text, as
	// TRL's SFTTrainer joins them (data/prep's Preprocessor.Plain).
	TextPair bool `json:"-"`
	// Source is "file:line" of the record the example came from, so that
	// later stages (tokenisation, validation reports) can point at it.
	Source string `json:"-"`
}

// Reply is one completion of a preference record's prompt: the
// assistant's messages after a conversation, or text after a text prompt.
type Reply struct {
	Messages []Message `json:"messages,omitempty"`
	Text     string    `json:"text,omitempty"`
}

// IsChat reports whether the example is a conversation rather than raw text.
func (e Example) IsChat() bool { return len(e.Messages) > 0 }

// Completed is a preference record's prompt followed by completion r (its
// Chosen or Rejected): one conversation or one text, as a supervised
// example.
func (e Example) Completed(r *Reply) Example {
	out := Example{Source: e.Source, Tools: e.Tools}
	if e.IsChat() {
		out.Messages = append(slices.Clone(e.Messages), r.Messages...)
	} else {
		out.Text = e.Text + r.Text
	}
	return out
}

// IsPreference reports whether the example is a preference record: a
// prompt with a chosen and a rejected completion, or an unpaired one
// (IsUnpaired).
func (e Example) IsPreference() bool { return e.Chosen != nil || e.Rejected != nil }

// IsUnpaired reports whether the example is an unpaired preference
// record: a prompt with one completion, desirable (Chosen) or not
// (Rejected).
func (e Example) IsUnpaired() bool { return (e.Chosen == nil) != (e.Rejected == nil) }

// Errors callers can branch on with errors.Is. A *PosError wraps them with
// the file position.
var (
	// ErrMalformed: the bytes are not valid JSON/CSV/parquet.
	ErrMalformed = errors.New("malformed record")
	// ErrMissingColumn: a record lacks a field that its shape needs.
	ErrMissingColumn = errors.New("missing column")
	// ErrEmptyDataset: a file holds no example at all.
	ErrEmptyDataset = errors.New("empty dataset")
	// ErrInvalidUTF8: text is not valid UTF-8 (JSON decoders would silently
	// replace it with U+FFFD, which would train the model on garbage).
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
	// ErrUnknownRole: a chat message has a role ftune cannot map.
	ErrUnknownRole = errors.New("unknown role")
	// ErrBadValue: a field has the wrong JSON type or an empty value.
	ErrBadValue = errors.New("bad value")
	// ErrUnsupported: the file extension or shape is not supported.
	ErrUnsupported = errors.New("unsupported")
	// ErrRecordTooLarge: one record of a streamed file runs past
	// Options.MaxRecordBytes, or holds more JSON values than ftune decodes
	// in one example (maxRecordValues).
	ErrRecordTooLarge = errors.New("record too large")
)

// PosError is an error at a position in an input file. Line and Column are
// 1-based; Column counts bytes and is 0 when unknown (a whole-record
// problem). Formats without lines (parquet) give Row, the 1-based record
// number, with Line 0; an error about the whole file has neither.
type PosError struct {
	File   string
	Line   int
	Column int
	Row    int
	Msg    string
	Err    error // one of the Err* sentinels
}

func (e *PosError) Error() string {
	pos := e.File + Position(e.Line, e.Row)
	if e.Line > 0 && e.Column > 0 {
		pos += fmt.Sprintf(":%d", e.Column)
	}
	// Messages built from a wrapped sentinel already name it.
	if e.Err != nil && !strings.Contains(e.Msg, e.Err.Error()) {
		return fmt.Sprintf("%s: %v: %s", pos, e.Err, e.Msg)
	}
	return pos + ": " + e.Msg
}

func (e *PosError) Unwrap() error { return e.Err }

// Position is what follows a file's name to place a record in it: ":line"
// where the format has lines, ": row n" where it has only records
// (parquet), and nothing for the whole file. A parquet row printed as a
// line (file.parquet:17, or file.parquet:0 for the file) would point an
// editor at a line that does not exist.
func Position(line, row int) string {
	switch {
	case line > 0:
		return fmt.Sprintf(":%d", line)
	case row > 0:
		return fmt.Sprintf(": row %d", row)
	}
	return ""
}

// roleNames are the names files give each role, compared in lower case
// without surrounding space. Beside the roles' own: ShareGPT's human and
// gpt, and the names its conversations (FastChat's ShareGPT collection,
// read by FastChat, Axolotl and LLaMA-Factory) give the chatbot that
// answered, chatgpt, bing and bard; Gemini's model; bot; OpenAssistant's
// prompter (Axolotl's guanaco strategy reads it as ShareGPT's human);
// OpenAI's developer, the system message of its newer models. A tool's
// result is "tool" (OpenAI's, transformers'), "function" (OpenAI's
// legacy function calling), "ipython" (Llama 3.1's) or "observation"
// (LLaMA-Factory's ShareGPT).
var roleNames = []struct {
	role  string
	names []string
}{
	{RoleSystem, []string{"system", "developer"}},
	{RoleUser, []string{"user", "human", "prompter"}},
	{RoleAssistant, []string{"assistant", "gpt", "model", "bot", "chatgpt", "bing", "bard"}},
	{RoleTool, []string{"tool", "function", "ipython", "observation"}},
}

// roleNotes are what the read notes say of the names whose role a reader
// of the file might not guess; the other names are the roles' usual ones.
var roleNotes = map[string]string{
	"developer": `role "developer" (OpenAI's name for the system message of its newer models) is read as system`,
	"chatgpt":   `role "chatgpt" (ShareGPT's name for the chatbot that answered) is read as assistant`,
	"bing":      `role "bing" (ShareGPT's name for the chatbot that answered) is read as assistant`,
	"bard":      `role "bard" (ShareGPT's name for the chatbot that answered) is read as assistant`,
	"prompter":  `role "prompter" (OpenAssistant's name for the user) is read as user`,
}

// normaliseRole maps a role name found in a file (roleNames) to its role,
// and says what the read notes should say of it ("" for a usual name).
func normaliseRole(role string) (r, note string, ok bool) {
	name := strings.ToLower(strings.TrimSpace(role))
	for _, rn := range roleNames {
		if slices.Contains(rn.names, name) {
			return rn.role, roleNotes[name], true
		}
	}
	return "", "", false
}

// knownRoles lists roleNames for an unknown role's message: "system (or
// developer), user (or human, prompter), ...".
func knownRoles() string {
	var each []string
	for _, rn := range roleNames {
		each = append(each, fmt.Sprintf("%s (or %s)", rn.names[0], strings.Join(rn.names[1:], ", ")))
	}
	return strings.Join(each, ", ")
}

// Validate checks what every later stage relies on: valid UTF-8, known
// roles, a conversation with at least one non-empty assistant answer (or
// one that calls a tool; otherwise nothing but end-of-turn tokens would be
// learnt under response-only masking) or a non-empty text, tool calls and
// results where they belong (checkMessages), and tools only beside
// messages, as a JSON list.
func (e Example) Validate() error {
	if err := e.checkTools(); err != nil {
		return err
	}
	if e.IsPreference() {
		return e.validatePreference()
	}
	if !e.IsChat() {
		if e.Text == "" {
			return fmt.Errorf("%w: empty text and no messages", ErrBadValue)
		}
		if !utf8.ValidString(e.Text) {
			return fmt.Errorf("%w in text", ErrInvalidUTF8)
		}
		return nil
	}
	assistant, answered, err := checkMessages(e.Messages)
	if err != nil {
		return err
	}
	if !assistant {
		return fmt.Errorf("%w: conversation has no assistant message", ErrBadValue)
	}
	if !answered {
		return fmt.Errorf("%w: every assistant answer is empty (only the end-of-turn token would be learnt)", ErrBadValue)
	}
	if allWeightZero(e.Messages) {
		return fmt.Errorf("%w: every assistant answer has weight 0: the record has nothing to learn (give one weight 1, or leave the record out)", ErrBadValue)
	}
	return nil
}

// checkTools checks the example's tools: a JSON list, and only in a
// conversation (only chat templates show tools to the model).
func (e Example) checkTools() error {
	if e.Tools == "" {
		return nil
	}
	if !e.IsChat() {
		return fmt.Errorf("%w: the example lists tools and is text: only a conversation, rendered by a chat template, shows tools to the model", ErrBadValue)
	}
	if !utf8.ValidString(e.Tools) {
		return fmt.Errorf("%w in the tools", ErrInvalidUTF8)
	}
	if !isJSON(e.Tools, '[') {
		return fmt.Errorf("%w: the tools are not a JSON list", ErrBadValue)
	}
	return nil
}

// isJSON says whether s is one JSON value starting with open ('{' for an
// object, '[' for a list).
func isJSON(s string, open byte) bool {
	t := strings.TrimSpace(s)
	return t != "" && t[0] == open && json.Valid([]byte(t))
}

// allWeightZero says whether every assistant message has weight 0.
func allWeightZero(msgs []Message) bool {
	for _, m := range msgs {
		if m.Role == RoleAssistant && !m.NoLoss {
			return false
		}
	}
	return true
}

// NoLossMessage is the first message of msgs with weight 0 (NoLoss, not
// Context), if any.
func NoLossMessage(msgs []Message) (int, bool) {
	for i, m := range msgs {
		if m.NoLoss && !m.Context {
			return i, true
		}
	}
	return 0, false
}

// validatePreference checks a preference record: a non-empty prompt and
// non-empty completions of the prompt's form (text after text, assistant
// messages after a conversation): two that differ, or an unpaired
// record's one.
func (e Example) validatePreference() error {
	type completion struct {
		name, what string // its field, and how messages call it
		r          *Reply
	}
	cs := []completion{{"chosen", "chosen completion", e.Chosen}, {"rejected", "rejected completion", e.Rejected}}
	if e.IsUnpaired() {
		cs = []completion{{"completion", "completion", cmp.Or(e.Chosen, e.Rejected)}}
	}
	if i, ok := NoLossMessage(e.Messages); ok {
		return fmt.Errorf("%w: prompt[%d] has weight 0: a preference record's prompt is never learnt, so a weight means nothing there", ErrBadValue, i)
	}
	for _, c := range cs {
		if c.r == nil {
			continue // refused below
		}
		if i, ok := NoLossMessage(c.r.Messages); ok {
			return fmt.Errorf("%w: %s[%d] has weight 0: a preference record's completions are compared whole, so a weight means nothing there", ErrBadValue, c.name, i)
		}
	}
	if !e.IsChat() {
		if e.Text == "" {
			return fmt.Errorf("%w: the prompt text is empty", ErrBadValue)
		}
		if !utf8.ValidString(e.Text) {
			return fmt.Errorf("%w in the prompt text", ErrInvalidUTF8)
		}
		for _, c := range cs {
			if c.r.Text == "" {
				return fmt.Errorf("%w: the %s text is empty", ErrBadValue, c.name)
			}
			if !utf8.ValidString(c.r.Text) {
				return fmt.Errorf("%w in the %s text", ErrInvalidUTF8, c.name)
			}
			if len(c.r.Messages) > 0 {
				return fmt.Errorf("%w: a text prompt with message completions (give the prompt and the completions as text, or all as messages)", ErrBadValue)
			}
		}
		if !e.IsUnpaired() && e.Chosen.Text == e.Rejected.Text {
			return fmt.Errorf("%w: the chosen and the rejected completions are the same: the pair teaches nothing", ErrBadValue)
		}
		return nil
	}
	if _, _, err := checkMessages(e.Messages); err != nil {
		return fmt.Errorf("prompt: %w", err)
	}
	for _, c := range cs {
		if len(c.r.Messages) == 0 {
			return fmt.Errorf("%w: the %s has no message (after a conversation, completions are lists of the assistant's messages)", ErrBadValue, c.what)
		}
		_, answered, err := checkMessages(c.r.Messages)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		for i, m := range c.r.Messages {
			if m.Role != RoleAssistant {
				return fmt.Errorf("%w: %s[%d] is a %s message; a completion holds the assistant's messages (the rest belongs in the prompt)", ErrBadValue, c.name, i, m.Role)
			}
		}
		if !answered {
			return fmt.Errorf("%w: the %s is empty", ErrBadValue, c.what)
		}
	}
	if !e.IsUnpaired() && slices.EqualFunc(e.Chosen.Messages, e.Rejected.Messages, Message.Equal) {
		return fmt.Errorf("%w: the chosen and the rejected completions are the same: the pair teaches nothing", ErrBadValue)
	}
	return nil
}

// checkMessages checks roles, UTF-8, reasoning placement and tool calls
// and results, and reports whether there is an assistant message and a
// non-empty one (an answer, or a call). Tool calls are an assistant's; a
// tool message answers the assistant message before it (other tool
// messages between them), one of its calls when it names the call it
// answers (tool_call_id) and they have ids; a tool_call_id belongs on tool
// messages only.
func checkMessages(msgs []Message) (assistant, answered bool, err error) {
	caller := -1 // the assistant message whose calls a tool message here answers
	// callerIDs holds the caller's call ids, made at its first tool
	// message with an id: scanning the calls for each result made k calls
	// answered by k results cost k².
	var callerIDs map[string]bool
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser:
			caller = -1
		case RoleAssistant:
			assistant = true
			answered = answered || strings.TrimSpace(m.Content) != "" || len(m.ToolCalls) > 0
			caller, callerIDs = i, nil
		case RoleTool:
			if caller < 0 {
				return false, false, fmt.Errorf("%w: message %d is a tool result, and no assistant message comes before it (a tool message follows the assistant message whose call it answers, or another tool message answering it)", ErrBadValue, i)
			}
			// An assistant message without tool_calls may have written
			// its call in its text (Phi-4-mini's <|tool_call|>): only an
			// id must name one of the calls.
			if calls := msgs[caller].ToolCalls; m.ToolCallID != "" && len(calls) == 0 {
				return false, false, fmt.Errorf("%w: message %d answers tool call %q, and message %d before it makes no tool_calls", ErrBadValue, i, m.ToolCallID, caller)
			} else if m.ToolCallID != "" {
				if callerIDs == nil {
					callerIDs = callIDSet(calls)
				}
				// Calls without ids are answered by any result.
				if len(callerIDs) > 0 && !callerIDs[m.ToolCallID] {
					return false, false, fmt.Errorf("%w: message %d answers tool call %q, which is none of the calls of message %d (%s)", ErrBadValue, i, m.ToolCallID, caller, callIDs(calls))
				}
			}
		default:
			return false, false, fmt.Errorf("%w %q in message %d (want system, user, assistant or tool)", ErrUnknownRole, m.Role, i)
		}
		if !utf8.ValidString(m.Content) {
			return false, false, fmt.Errorf("%w in message %d", ErrInvalidUTF8, i)
		}
		if m.NoLoss && m.Role != RoleAssistant {
			// Only answers are learnt: on another role it would mean nothing.
			return false, false, fmt.Errorf("%w: message %d (%s) has a weight; only assistant messages can have one", ErrBadValue, i, m.Role)
		}
		if err := checkCalls(i, m); err != nil {
			return false, false, err
		}
		if m.ReasoningContent != "" {
			// A template reads the reasoning of assistant turns only: on
			// another role it would be dropped without a word.
			if m.Role != RoleAssistant {
				return false, false, fmt.Errorf("%w: message %d (%s) has reasoning content; only assistant messages can have it", ErrBadValue, i, m.Role)
			}
			if !utf8.ValidString(m.ReasoningContent) {
				return false, false, fmt.Errorf("%w in the reasoning content of message %d", ErrInvalidUTF8, i)
			}
			// Templates take the reasoning field over a <think> block in
			// the content, which would then be learnt as answer text.
			if strings.Contains(m.Content, "</think>") {
				return false, false, fmt.Errorf("%w: message %d has reasoning content and a <think> block in its content too (give the thinking once)", ErrBadValue, i)
			}
		}
	}
	return assistant, answered, nil
}

// checkCalls checks message i's tool calls and its tool_call_id and name.
func checkCalls(i int, m Message) error {
	if len(m.ToolCalls) > 0 && m.Role != RoleAssistant {
		return fmt.Errorf("%w: message %d (%s) has tool calls; only assistant messages make them", ErrBadValue, i, m.Role)
	}
	first := map[string]int{} // each call id's first call (a map: n calls scanned pairwise cost n²)
	for j, c := range m.ToolCalls {
		k, dup := first[c.ID]
		if !dup {
			first[c.ID] = j
		}
		switch {
		case !utf8.ValidString(c.ID) || !utf8.ValidString(c.Name) || !utf8.ValidString(c.Arguments):
			return fmt.Errorf("%w in message %d, tool call %d", ErrInvalidUTF8, i, j)
		case strings.TrimSpace(c.Name) == "":
			return fmt.Errorf("%w: message %d, tool call %d has no function name", ErrBadValue, i, j)
		case !isJSON(c.Arguments, '{'):
			return fmt.Errorf("%w: message %d, tool call %d: the arguments are not a JSON object", ErrBadValue, i, j)
		case c.ID != "" && dup:
			// A result naming it would answer either.
			return fmt.Errorf("%w: message %d, tool calls %d and %d have the same id %q", ErrBadValue, i, k, j, c.ID)
		}
	}
	// A name on any message (OpenAI's participant names) reaches the
	// template as message.name, as transformers passes it; a call id
	// belongs to a tool's result only.
	if m.Role != RoleTool && m.ToolCallID != "" {
		return fmt.Errorf("%w: message %d (%s) has a tool_call_id; only tool messages (a function's result) have one", ErrBadValue, i, m.Role)
	}
	if !utf8.ValidString(m.ToolCallID) || !utf8.ValidString(m.Name) {
		return fmt.Errorf("%w in the tool_call_id or name of message %d", ErrInvalidUTF8, i)
	}
	return nil
}

// callIDSet is the set of calls' ids; empty when none has one.
func callIDSet(calls []ToolCall) map[string]bool {
	ids := map[string]bool{}
	for _, c := range calls {
		if c.ID != "" {
			ids[c.ID] = true
		}
	}
	return ids
}

// maxListedCallIDs is how many call ids an error lists: enough to see
// the ids' pattern, where a record of many calls would make the message
// as long as the record.
const maxListedCallIDs = 10

// callIDs lists the ids of calls for a message.
func callIDs(calls []ToolCall) string {
	var ids []string
	more := 0
	for _, c := range calls {
		switch {
		case c.ID == "":
		case len(ids) < maxListedCallIDs:
			ids = append(ids, strconv.Quote(c.ID))
		default:
			more++
		}
	}
	list := "its call ids: " + strings.Join(ids, ", ")
	if more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return list
}
