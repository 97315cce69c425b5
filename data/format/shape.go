package format

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Shape is the layout of a record: which fields hold what.
type Shape int

const (
	// ShapeAuto detects the shape from the first record's field names.
	ShapeAuto Shape = iota
	// ShapeAlpaca: instruction, optional input, output.
	ShapeAlpaca
	// ShapeChat: messages = [{role, content}, ...].
	ShapeChat
	// ShapeShareGPT: conversations = [{from, value}, ...], from in human/gpt/system.
	ShapeShareGPT
	// ShapeCompletion: text, learnt in full.
	ShapeCompletion
	// ShapeInputOutput: one prompt field and one response field.
	ShapeInputOutput
	// ShapePreference: a prompt and two completions of it, chosen and
	// rejected (TRL's preference layout), for preference training.
	ShapePreference
	// ShapeUnpairedPreference: a prompt, one completion of it and a label
	// saying whether the completion is desirable (TRL's unpaired
	// preference layout, thumbs up or down), for KTO.
	ShapeUnpairedPreference
)

var shapeNames = map[Shape]string{
	ShapeAuto: "auto", ShapeAlpaca: "alpaca", ShapeChat: "chat", ShapeShareGPT: "sharegpt",
	ShapeCompletion: "completion", ShapeInputOutput: "input_output", ShapePreference: "preference",
	ShapeUnpairedPreference: "unpaired_preference",
}

func (s Shape) String() string {
	if n, ok := shapeNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Shape(%d)", int(s))
}

// ParseShape turns a config string ("alpaca", "chat", ...) into a Shape.
func ParseShape(name string) (Shape, error) {
	for s, n := range shapeNames {
		if n == name {
			return s, nil
		}
	}
	if name == "" {
		return ShapeAuto, nil
	}
	return ShapeAuto, fmt.Errorf("%w shape %q (want auto, alpaca, chat, sharegpt, completion, input_output, preference or unpaired_preference)", ErrUnsupported, name)
}

// Mapping says which record fields hold what. Empty names take the
// defaults of the shape, so a caller only names the columns that differ
// (e.g. Shape: ShapeInputOutput, Prompt: "question", Response: "answer").
type Mapping struct {
	Shape Shape

	Instruction, Input, Output string // alpaca
	Messages, Role, Content    string // chat and sharegpt
	Text                       string // completion
	Prompt, Response           string // input/output pairs
	// History names an alpaca record's earlier turns ("history" by
	// default, LLaMA-Factory's): a list of [instruction, response] pairs
	// before the record's own, read as user and assistant turns.
	History string
	// Chosen and Rejected are a preference record's completions. Its
	// prompt is Prompt ("prompt" by default, TRL's), or, when Instruction
	// is set, a conversation: History's turns, then the user's
	// Instruction with its Input joined as alpaca's are (LLaMA-Factory's
	// alpaca ranking data; Axolotl's chatml.intel, whose Instruction is
	// "question"), the completions the assistant's answers; or, when
	// Messages is set, the conversation there (LLaMA-Factory's ShareGPT
	// ranking data), the completions the assistant's messages after it.
	Chosen, Rejected string
	// Completion and Label are an unpaired preference record's one
	// completion and whether it is desirable; its prompt is read as a
	// preference record's. When Messages is set instead, the record is
	// one conversation whose last message is the completion (LLaMA-Factory's
	// KTO data in ShareGPT form).
	Completion, Label string
	// System names a field whose value, when present and not empty,
	// becomes the conversation's system message ("system" by default, as
	// LLaMA-Factory's ShareGPT and alpaca files name it), since a system
	// prompt that a record holds and the run drops would train another
	// model than the one asked for. A completion is refused with one: it
	// is learnt as plain text, never rendered through the chat template,
	// so it has no turn to put a system message in.
	System string
	// Tools names the field listing the functions a conversation may
	// call ("tools" by default, as OpenAI's, TRL's and LLaMA-Factory's
	// files name it): a list of tool schemas, or a string holding one,
	// read into Example.Tools. A record whose example is text (a
	// completion, a text preference) is refused with one, since only a
	// chat template shows tools to the model.
	Tools string

	// said collects the read notes of the record being read (a role read
	// under another name, content given as parts), which the Reader says
	// once a file; nil, collecting none, in a Mapping a caller makes.
	said *recordNotes
}

// withDefaults fills the names the shape needs.
func (m Mapping) withDefaults() Mapping {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	switch m.Shape {
	case ShapeAlpaca, ShapeChat, ShapeShareGPT, ShapeInputOutput, ShapePreference, ShapeUnpairedPreference, ShapeCompletion:
		def(&m.System, "system")
		def(&m.Tools, "tools")
	}
	switch m.Shape {
	case ShapeAlpaca:
		def(&m.Instruction, "instruction")
		def(&m.Input, "input")
		def(&m.Output, "output")
		def(&m.History, "history")
	case ShapeChat:
		def(&m.Messages, "messages")
		def(&m.Role, "role")
		def(&m.Content, "content")
	case ShapeShareGPT:
		def(&m.Messages, "conversations")
		def(&m.Role, "from")
		def(&m.Content, "value")
	case ShapeCompletion:
		def(&m.Text, "text")
	case ShapeInputOutput:
		def(&m.Prompt, "input")
		def(&m.Response, "output")
		def(&m.Role, "role") // of a conversational prompt's messages
		def(&m.Content, "content")
	case ShapePreference:
		if m.Messages == "" {
			m.promptDefaults()
		}
		def(&m.Chosen, "chosen")
		def(&m.Rejected, "rejected")
		def(&m.Role, "role")
		def(&m.Content, "content")
	case ShapeUnpairedPreference:
		if m.Messages == "" {
			m.promptDefaults()
			def(&m.Completion, "completion")
		}
		def(&m.Label, "label")
		def(&m.Role, "role")
		def(&m.Content, "content")
	}
	return m
}

// promptDefaults fills a preference record's prompt columns: TRL's
// prompt, or an instruction's history.
func (m *Mapping) promptDefaults() {
	switch {
	case m.Instruction == "" && m.Prompt == "":
		m.Prompt = "prompt"
	case m.Instruction != "" && m.History == "":
		m.History = "history"
	}
}

// detectPrompt sets the prompt columns of a preference record with fields
// has: TRL's prompt; else LLaMA-Factory's alpaca instruction and input
// (its ranking data maps prompt: instruction, query: input); else the
// question of Axolotl's chatml.intel (Intel's orca_dpo_pairs); with none,
// the prompt is implicit (the completions' shared beginning).
func (m *Mapping) detectPrompt(has func(string) bool) {
	switch {
	case has("prompt"):
	case has("instruction"):
		m.Instruction, m.Input = "instruction", "input"
	case has("question"):
		m.Instruction = "question"
	}
}

// Detect picks a shape from a record's field names. The order matters:
// an alpaca record also has "input" and "output", so it is tested before
// input/output pairs.
func Detect(fields map[string]any) (Mapping, error) {
	has := func(k string) bool { _, ok := fields[k]; return ok }
	var m Mapping
	if axolotlSegments(fields["segments"]) {
		return m, errSegments
	}
	switch {
	case has("chosen") && has("rejected"):
		m.Shape = ShapePreference
		m.detectPrompt(has)
		// LLaMA-Factory's ShareGPT ranking data (or its OpenAI-role
		// form): a conversation, and the answers to it. Beside whole
		// conversations as the completions, a "messages" field repeats
		// one of them (ultrafeedback_binarized's), and the prompt is what
		// they share (TRL's implicit prompt).
		switch {
		case has("prompt") || m.Instruction != "":
		case has("conversations"):
			m.Messages, m.Role, m.Content = "conversations", "from", "value"
		case has("messages") && !isMessageList(fields["chosen"]):
			m.Messages = "messages"
		}
	case has("kto_tag"):
		// LLaMA-Factory's KTO data: a supervised record and a tag saying
		// whether its answer is desirable, which read as the supervised
		// record would learn the undesirable answers.
		m = Mapping{Shape: ShapeUnpairedPreference, Label: "kto_tag"}
		switch {
		case has("messages"):
			m.Messages = "messages"
		case has("conversations"):
			m.Messages, m.Role, m.Content = "conversations", "from", "value"
		case has("instruction"):
			m.Instruction, m.Input, m.Completion = "instruction", "input", "output"
		default:
			return m, fmt.Errorf("%w: field \"kto_tag\" (LLaMA-Factory's KTO label) beside fields %v: expected it beside instruction and output, messages or conversations, whose answer it labels (TRL's layout is prompt, completion and label)", ErrMissingColumn, sortedKeys(fields))
		}
	case has("completion") && has("label"):
		// Before prompt/completion pairs, whose fields it has.
		m.Shape = ShapeUnpairedPreference
		m.detectPrompt(has)
	case has("messages"):
		m.Shape = ShapeChat
	case has("conversations"):
		m.Shape = ShapeShareGPT
	case has("instruction") && has("output"):
		m.Shape = ShapeAlpaca
	case has("text"):
		m.Shape = ShapeCompletion
	case has("input") && has("output"):
		m.Shape = ShapeInputOutput
	case has("prompt") && has("completion"):
		// TRL's prompt-completion layout, supervised: text, or lists of
		// messages (toExample).
		m = Mapping{Shape: ShapeInputOutput, Prompt: "prompt", Response: "completion"}
	case has("prompt") && has("response"):
		m = Mapping{Shape: ShapeInputOutput, Prompt: "prompt", Response: "response"}
	case has("question") && has("answer"):
		m = Mapping{Shape: ShapeInputOutput, Prompt: "question", Response: "answer"}
	default:
		return m, fmt.Errorf("%w: cannot detect the shape from fields %v (want messages, conversations, instruction+output, text, input+output, prompt+completion/response, question+answer, chosen+rejected, completion+label or a kto_tag; or set a column mapping)", ErrMissingColumn, sortedKeys(fields))
	}
	// The system column is read from every record whether or not the
	// first one has it (withDefaults), so a later record's is not lost.
	return m.withDefaults(), nil
}

// sortedKeys are a record's field names, sorted.
func sortedKeys(fields map[string]any) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// columns are the record fields the mapping reads.
func (m Mapping) columns() []string {
	var cols []string
	switch m.Shape {
	case ShapeAlpaca:
		cols = []string{m.Instruction, m.Input, m.History, m.Output}
	case ShapeChat, ShapeShareGPT:
		cols = []string{m.Messages}
	case ShapeCompletion:
		cols = []string{m.Text}
	case ShapeInputOutput:
		cols = []string{m.Prompt, m.Response}
	case ShapePreference:
		cols = append(m.promptColumns(), m.Chosen, m.Rejected)
	case ShapeUnpairedPreference:
		if m.Messages != "" {
			cols = []string{m.Messages, m.Label}
		} else {
			cols = append(m.promptColumns(), m.Completion, m.Label)
		}
	}
	cols = append(cols, m.System, m.Tools)
	return slices.DeleteFunc(cols, func(c string) bool { return c == "" })
}

// promptColumns are the fields a preference record's prompt is read from.
func (m Mapping) promptColumns() []string {
	if m.Shape == ShapePreference && m.Messages != "" {
		return []string{m.Messages}
	}
	if m.Instruction != "" {
		return slices.DeleteFunc([]string{m.Instruction, m.Input, m.History}, func(c string) bool { return c == "" })
	}
	return []string{m.Prompt}
}

// layoutFields are the record fields Detect tells layouts apart by.
var layoutFields = []string{"messages", "conversations", "instruction", "input", "output", "text",
	"prompt", "completion", "response", "question", "answer", "chosen", "rejected", "label", "kto_tag"}

// ignoredColumns are the fields of record f that m does not read and that
// f's layout would, so that no record loses them without a word: those
// the shape detected from f reads (a file whose first record fixed m and
// whose later record holds more: an "instruction" beside input/output
// pairs); and beside an unpaired preference record, which is a prompt, a
// completion and a label and nothing else (TRL's layout), any field a
// layout is detected from (a "chosen", "messages" or "text" beside them
// is another record's, or a mistake). A supervised record keeps its other
// fields (the "text" tatsu-lab/alpaca's records carry beside instruction
// and output, the "prompt" of ultrachat_200k's beside messages), as a
// preference record does (ultrafeedback_binarized's "messages"), unless
// they hold text that is read nowhere else (unreadText).
func (m Mapping) ignoredColumns(f map[string]any) []string {
	var layout []string
	if own, err := Detect(f); err == nil {
		layout = own.columns()
	}
	if m.Shape == ShapeUnpairedPreference {
		layout = append(layout, layoutFields...)
	}
	read := map[string]bool{}
	for _, c := range m.columns() {
		read[c] = true
	}
	var out []string
	for _, c := range layout {
		if v, ok := f[c]; ok && v != nil && v != "" && !read[c] {
			read[c] = true // once
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// toExample converts one record with a resolved mapping; raw is the
// record's JSON text (nil where the source has none), where a tool call's
// arguments and the tools are read with their keys in order. Errors wrap
// an Err* sentinel and name the field; the caller adds the position.
func (m Mapping) toExample(f map[string]any, raw rawJSON) (Example, error) {
	if m.Shape == ShapeCompletion && m.Tools != "" && hasValue(f[m.Tools]) {
		return Example{}, fmt.Errorf("%w: field %q lists tools, which a completion has no place for (its %q is learnt as plain text, not rendered through a chat template, which is what shows tools to the model): give the record as chat or prompt/completion pairs", ErrBadValue, m.Tools, m.Text)
	}
	tools, from, err := m.tools(f, raw)
	if err != nil {
		return Example{}, err
	}
	ex, err := m.example(f, raw)
	if err != nil || tools == "" {
		return ex, err
	}
	if !ex.IsChat() {
		return Example{}, fmt.Errorf("%w: field %q lists tools, which a text prompt has no place for (only a chat template shows tools to the model): give the prompt as a list of messages", ErrBadValue, from)
	}
	ex.Tools = tools
	return ex, nil
}

// example is toExample without the record's tools.
func (m Mapping) example(f map[string]any, raw rawJSON) (Example, error) {
	var ex Example
	switch m.Shape {
	case ShapeCompletion:
		t, err := field(f, m.Text, true)
		if err != nil {
			return ex, err
		}
		if s, err := field(f, m.System, false); err != nil {
			return ex, err
		} else if s != "" {
			return ex, fmt.Errorf("%w: field %q holds a system prompt, which a completion has no place for (its %q is learnt as plain text, not rendered as chat turns): put it in the text, or give the record as chat or prompt/completion pairs", ErrBadValue, m.System, m.Text)
		}
		ex.Text = t
	case ShapeAlpaca, ShapeInputOutput:
		var turns []Message
		resp := m.Output
		if m.Shape == ShapeAlpaca {
			var err error
			if turns, err = m.alpacaTurns(f); err != nil {
				return ex, err
			}
		} else {
			resp = m.Response
			conv, ok, err := m.conversationalPair(f, raw)
			if ok || err != nil {
				return conv, err
			}
			p, err := field(f, m.Prompt, true)
			if err != nil {
				return ex, err
			}
			turns = []Message{{Role: RoleUser, Content: p}}
		}
		r, err := field(f, resp, true)
		if err != nil {
			return ex, err
		}
		ex.Messages = append(turns, Message{Role: RoleAssistant, Content: r})
		if ex.Messages, err = m.withSystem(f, ex.Messages, "the conversation"); err != nil {
			return ex, err
		}
		ex.TextPair = m.Shape == ShapeInputOutput
	case ShapeChat, ShapeShareGPT:
		msgs, err := m.messageList(f, m.Messages, fieldJSON(f, raw, m.Messages))
		if err != nil {
			return ex, err
		}
		if ex.Messages, err = m.withSystem(f, msgs, fmt.Sprintf("%q", m.Messages)); err != nil {
			return ex, err
		}
	case ShapePreference:
		return m.preference(f, raw)
	case ShapeUnpairedPreference:
		return m.unpaired(f, raw)
	default:
		return ex, fmt.Errorf("%w shape %v", ErrUnsupported, m.Shape)
	}
	return ex, ex.Validate()
}

// conversationalPair reads a prompt/completion pair whose prompt is a
// list of messages (ok false for text pairs): TRL's conversational
// prompt-completion layout, which its SFTTrainer learns with the
// completion alone in the loss. The example is the prompt's messages then
// the completion's, or a text completion as the assistant's answer (as in
// a preference record); the prompt's own assistant messages are context,
// not learnt (NoLoss), as TRL's completion mask leaves them, unless given
// a weight (1 learns one, as in a chat record). A prompt or
// completion cell holding a JSON list of messages (CSV, parquet strings)
// is that list.
func (m Mapping) conversationalPair(rec map[string]any, raw rawJSON) (ex Example, ok bool, err error) {
	f, err := m.decodeMessageLists(rec, m.Prompt, m.Response)
	if err != nil {
		return ex, false, err
	}
	_, promptChat := f[m.Prompt].([]any)
	_, completionChat := f[m.Response].([]any)
	for _, name := range []string{m.Prompt, m.Response} {
		if _, obj := f[name].(map[string]any); obj {
			return ex, false, fmt.Errorf("%w: field %q: expected text or a list of messages ([{\"role\": ..., \"content\": ...}]), got an object", ErrBadValue, name)
		}
	}
	switch {
	case !promptChat && !completionChat:
		return ex, false, nil
	case !promptChat:
		return ex, false, fmt.Errorf("%w: field %q is %s and %q is a list of messages: give the prompt as a list of messages too ([{\"role\": \"user\", \"content\": ...}]), or both as text", ErrBadValue, m.Prompt, typeName(f[m.Prompt]), m.Response)
	}
	prompt, err := m.messageList(f, m.Prompt, fieldJSON(rec, raw, m.Prompt))
	if err != nil {
		return ex, false, err
	}
	items := f[m.Prompt].([]any)
	for i := range prompt {
		// An answer the record gives a weight keeps it: "weight": 1 (or
		// "train": true) in the prompt learns that answer too.
		if prompt[i].Role == RoleAssistant && !givesLoss(items[i].(map[string]any)) {
			prompt[i].NoLoss, prompt[i].Context = true, true
		}
	}
	var completion []Message
	if completionChat {
		if completion, err = m.messageList(f, m.Response, fieldJSON(rec, raw, m.Response)); err != nil {
			return ex, false, err
		}
	} else {
		t, err := field(f, m.Response, true)
		if err != nil {
			return ex, false, err
		}
		completion = []Message{{Role: RoleAssistant, Content: t}} // a bare answer
	}
	if !slices.ContainsFunc(completion, func(m Message) bool { return m.Role == RoleAssistant }) {
		return ex, false, fmt.Errorf("%w: field %q has no assistant message: the completion is what is learnt (the prompt's messages are its context)", ErrBadValue, m.Response)
	}
	if ex.Messages, err = m.withSystem(f, append(prompt, completion...), "the conversation (prompt then completion)"); err != nil {
		return ex, false, err
	}
	return ex, true, ex.Validate()
}

// withSystem puts the record's system field, when it has a non-empty one,
// before msgs as a system message. A conversation that has a system
// message of its own as well is refused: which of the two the user meant
// cannot be told, and keeping both would give the model two system
// prompts. in names msgs in that message.
func (m Mapping) withSystem(f map[string]any, msgs []Message, in string) ([]Message, error) {
	if m.System == "" {
		return msgs, nil
	}
	s, err := field(f, m.System, false)
	if err != nil || s == "" {
		return msgs, err
	}
	for i, msg := range msgs {
		if msg.Role == RoleSystem {
			return nil, fmt.Errorf("%w: field %q holds a system prompt and %s has a system message too (message %d): give it once", ErrBadValue, m.System, in, i)
		}
	}
	return append([]Message{{Role: RoleSystem, Content: s}}, msgs...), nil
}

// messageList reads the list of messages in field name; raw is its JSON
// text, where tool calls' arguments are read with their keys in order.
// Beside role and content, a message may have tool calls (tool_calls, or
// OpenAI's legacy function_call; its content may then be null or absent),
// a tool result its tool_call_id and name, and a role function_call
// (LLaMA-Factory's ShareGPT) is an assistant message whose content is the
// JSON of its calls.
func (m Mapping) messageList(f map[string]any, name string, raw rawJSON) ([]Message, error) {
	v, ok := f[name]
	if !ok || v == nil {
		return nil, fmt.Errorf("%w %q", ErrMissingColumn, name) // the reader names the shape
	}
	// CSV and some parquet exports store the list as a JSON string.
	if s, ok := v.(string); ok {
		if off, bad := loneSurrogate([]byte(s)); bad {
			return nil, fmt.Errorf("%w: field %q: the JSON list of messages has a lone UTF-16 surrogate escape at byte %d (JSON readers would write U+FFFD for it)", ErrInvalidUTF8, name, off+1)
		}
		if err := stringValues(s, fmt.Sprintf("field %q", name)); err != nil {
			return nil, err
		}
		var list []any
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return nil, fmt.Errorf("%w: field %q: expected a JSON list of messages: %v", ErrBadValue, name, err)
		}
		if err := repeatedKey([]byte(s), name); err != nil {
			return nil, err
		}
		v = list
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("%w: field %q: expected a non-empty list of messages, got %s", ErrBadValue, name, typeName(v))
	}
	elem := raw.elements()
	msgs := make([]Message, 0, len(list))
	callTurn := false // the message before was a function_call turn
	for i, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s[%d]: expected an object with %q and %q, got %s", ErrBadValue, name, i, m.Role, m.Content, typeName(item))
		}
		role, err := field(obj, m.Role, true)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
		}
		var msg Message
		if isFunctionCallRole(role) {
			// LLaMA-Factory's function_call turn: its value is the calls.
			if callTurn {
				return nil, fmt.Errorf("%w: %s[%d]: a function_call turn right after another: give calls made together as one turn whose value is a JSON list of them", ErrBadValue, name, i)
			}
			if !isEmptyList(obj["tool_calls"]) || obj["function_call"] != nil {
				return nil, fmt.Errorf("%w: %s[%d]: a function_call turn holds its calls in %q, and has \"tool_calls\" or \"function_call\" too (give them once)", ErrBadValue, name, i, m.Content)
			}
			if msg.ToolCalls, err = functionCallTurn(obj[m.Content], elem(i).member(m.Content)); err != nil {
				return nil, inMessage(name, i, err)
			}
			msg.Role, callTurn = RoleAssistant, true
		} else {
			callTurn = false
			var itemRaw rawJSON
			if obj["tool_calls"] != nil || obj["function_call"] != nil {
				itemRaw = elem(i)
			}
			if msg.ToolCalls, err = toolCalls(obj, itemRaw); err != nil {
				return nil, inMessage(name, i, err)
			}
			// A missing or null content is not an empty message, unless
			// the message makes calls (OpenAI's files write null then):
			// it is usually an export that lost the text.
			if c, ok := obj[m.Content]; !ok && msg.ToolCalls == nil {
				return nil, fmt.Errorf("%s[%d]: %w %q", name, i, ErrMissingColumn, m.Content)
			} else if ok && c == nil && msg.ToolCalls == nil {
				return nil, fmt.Errorf("%w: %s[%d]: %q is null (expected a string; write \"\" for an empty message)", ErrBadValue, name, i, m.Content)
			}
			if parts, ok := obj[m.Content].([]any); ok {
				msg.Content, err = contentParts(parts, m.Content, msg.ToolCalls != nil)
				m.said.add(contentPartsNote)
			} else {
				msg.Content, err = field(obj, m.Content, false)
			}
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
			}
			r, note, ok := normaliseRole(role)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: %w %q (want %s or function_call)", name, i, ErrUnknownRole, role, knownRoles())
			}
			msg.Role = r
			m.said.add(note)
		}
		for _, k := range []struct {
			key string
			dst *string
		}{{"tool_call_id", &msg.ToolCallID}, {"name", &msg.Name}} {
			if k.key == m.Role || k.key == m.Content {
				continue // a column mapping's
			}
			if *k.dst, err = field(obj, k.key, false); err != nil {
				return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
			}
		}
		if msg.ReasoningContent, err = reasoningField(obj); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
		}
		if msg.NoLoss, err = lossFields(obj, msg.Role); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", name, i, err)
		}
		msgs = append(msgs, msg)
	}
	return msgs, nil
}

// ReasoningKeys are the message keys read as an assistant turn's thinking:
// reasoning_content is what transformers' chat templates read (Qwen3,
// DeepSeek-R1); reasoning and thinking are the names other datasets and
// chat APIs give it. A message may use several only if they agree.
var ReasoningKeys = []string{"reasoning_content", "reasoning", "thinking"}

// reasoningField reads a message's reasoning. A null value is absent, as
// transformers' templates treat it ("is not none"); a number or a list is
// an error, not text to train on.
func reasoningField(obj map[string]any) (string, error) {
	val, from := "", ""
	for _, k := range ReasoningKeys {
		v, ok := obj[k]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%w: field %q: expected a string (the assistant's reasoning), got %s", ErrBadValue, k, typeName(v))
		}
		if from != "" && s != val {
			return "", fmt.Errorf("%w: fields %q and %q both hold reasoning and differ (keep one)", ErrBadValue, from, k)
		}
		val, from = s, k
	}
	return val, nil
}

// field reads a field that holds text: a string (or parquet's bytes).
// Null or absent is none. A number or a boolean is refused, naming the
// type and the value: JSON and parquet say what is text, and how a number
// would be written as text (4, 4.0, 4e0) is the writer's to choose, not
// ftune's to guess; a number where text belongs is most often a score or
// a label read by a guessed name. CSV and TSV cells are strings whatever
// they hold, and are read as written ("4").
func field(f map[string]any, name string, required bool) (string, error) {
	v, ok := f[name]
	if !ok || v == nil {
		if required {
			return "", fmt.Errorf("%w %q", ErrMissingColumn, name)
		}
		return "", nil
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return "", fmt.Errorf("%w: field %q: expected a string, got %s", ErrBadValue, name, valueName(v))
	}
	if required && strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%w: field %q is empty", ErrBadValue, name)
	}
	return s, nil
}

// valueName is typeName with a scalar's value: "a number (4)", "a
// boolean (true)", for the messages of fields that expected text.
func valueName(v any) string {
	switch v.(type) {
	case json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, bool:
		return fmt.Sprintf("%s (%v)", typeName(v), v)
	}
	return typeName(v)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	case json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// preference reads a preference record (TRL's layouts, and those whose
// prompt is an instruction: Mapping.Instruction). Standard: prompt,
// chosen and rejected are text, the completions continuing the prompt's
// text. Conversational: prompt is a list of messages and chosen and
// rejected lists of the assistant's messages that follow it; completions
// given as text after a list of messages are the assistant's answers
// (TRL's conversational layout written with bare answers, rather than a
// prompt to throw away). Without a prompt field the completions are whole
// texts or conversations and their shared beginning is the prompt (TRL's
// implicit prompt: the messages before the first that differs; for text,
// the characters before it, less a space that ends them); a text prompt
// beside whole conversations is taken as such a duplicate and the
// conversations' shared beginning is the prompt (TRL's
// maybe_extract_prompt), and refused when they share none.
//
// CSV files (and some parquet exports) can only hold a list as a JSON
// string: a prompt, chosen or rejected string that is a JSON list of
// messages is read as that list, as a chat file's messages column is,
// rather than learnt as the JSON text.
func (m Mapping) preference(rec map[string]any, raw rawJSON) (Example, error) {
	var ex Example
	f, err := m.decodeMessageLists(rec, m.Prompt, m.Chosen, m.Rejected)
	if err != nil {
		return ex, err
	}
	if err := m.unreadPrompt(f); err != nil {
		return ex, err
	}
	chosen, rejected := f[m.Chosen], f[m.Rejected]
	if chosen == nil {
		return ex, fmt.Errorf("%w %q", ErrMissingColumn, m.Chosen)
	}
	if rejected == nil {
		return ex, fmt.Errorf("%w %q", ErrMissingColumn, m.Rejected)
	}
	if m.Messages != "" {
		return m.conversationPreference(rec, f, raw)
	}
	prompt, hasPrompt := f[m.Prompt]
	hasPrompt = hasPrompt && m.Prompt != "" // not an instruction's
	if hasPrompt && prompt == nil {
		return ex, fmt.Errorf("%w: field %q is null", ErrBadValue, m.Prompt)
	}
	_, chat := chosen.([]any)
	if _, rchat := rejected.([]any); rchat != chat {
		return ex, fmt.Errorf("%w: %q is %s and %q is %s: give both completions as text, or both as lists of messages", ErrBadValue, m.Chosen, typeName(chosen), m.Rejected, typeName(rejected))
	}
	_, promptChat := prompt.([]any)
	textPrompt := hasPrompt && !promptChat && chat
	if textPrompt {
		// A text prompt beside whole conversations (some datasets add
		// one): the conversations' shared beginning is the prompt, as
		// TRL's maybe_extract_prompt takes it.
		hasPrompt = false
	}
	if m.Instruction == "" && !chat && !(hasPrompt && promptChat) {
		var err error
		texts := map[string]string{}
		for _, name := range []string{m.Prompt, m.Chosen, m.Rejected} {
			if name == m.Prompt && !hasPrompt {
				continue
			}
			if texts[name], err = field(f, name, true); err != nil {
				return ex, err
			}
		}
		if s, err := field(f, m.System, false); err != nil {
			return ex, err
		} else if m.System != "" && s != "" {
			return ex, fmt.Errorf("%w: field %q holds a system prompt, which a text prompt has no place for (give the prompt as a list of messages to have one)", ErrBadValue, m.System)
		}
		p, c, r := texts[m.Prompt], texts[m.Chosen], texts[m.Rejected]
		if !hasPrompt {
			n := commonPrefix([]rune(c), []rune(r), func(x, y rune) bool { return x == y })
			if n > 0 && []rune(c)[n-1] == ' ' {
				n--
			}
			p, c, r = string([]rune(c)[:n]), string([]rune(c)[n:]), string([]rune(r)[n:])
			if p == "" {
				return ex, fmt.Errorf("%w %q: %q and %q share no beginning to take as the prompt", ErrMissingColumn, m.Prompt, m.Chosen, m.Rejected)
			}
		}
		ex.Text, ex.Chosen, ex.Rejected = p, &Reply{Text: c}, &Reply{Text: r}
		return ex, ex.Validate()
	}
	var c, r, p []Message
	if chat {
		if c, err = m.messageList(f, m.Chosen, fieldJSON(rec, raw, m.Chosen)); err != nil {
			return ex, err
		}
		if r, err = m.messageList(f, m.Rejected, fieldJSON(rec, raw, m.Rejected)); err != nil {
			return ex, err
		}
	} else {
		// Bare answers after a conversation prompt.
		for _, x := range []struct {
			name string
			dst  *[]Message
		}{{m.Chosen, &c}, {m.Rejected, &r}} {
			t, err := field(f, x.name, true)
			if err != nil {
				return ex, err
			}
			*x.dst = []Message{{Role: RoleAssistant, Content: t}}
		}
	}
	switch {
	case m.Instruction != "":
		// An instruction (or question) is the user's message, and the
		// completions the assistant's answers to it.
		if p, err = m.alpacaTurns(f); err != nil {
			return ex, err
		}
	case hasPrompt:
		if p, err = m.messageList(f, m.Prompt, fieldJSON(rec, raw, m.Prompt)); err != nil {
			return ex, err
		}
	default:
		n := commonPrefix(c, r, Message.Equal)
		p, c, r = c[:n], c[n:], r[n:]
		if n == 0 && textPrompt {
			return ex, fmt.Errorf("%w: field %q is text and %q and %q are lists of messages whose first messages differ, so they are not whole conversations that repeat the prompt: give the prompt as a list of messages too ([{\"role\": \"user\", \"content\": ...}])", ErrBadValue, m.Prompt, m.Chosen, m.Rejected)
		}
		if n == 0 {
			return ex, fmt.Errorf("%w %q: the first messages of %q and %q differ, so there is no prompt", ErrMissingColumn, m.Prompt, m.Chosen, m.Rejected)
		}
	}
	if p, err = m.withSystem(f, p, "the prompt"); err != nil {
		return ex, err
	}
	ex.Messages, ex.Chosen, ex.Rejected = p, &Reply{Messages: c}, &Reply{Messages: r}
	return ex, ex.Validate()
}

// decodeMessageLists is rec with each field of names that holds a JSON
// list of messages as a string (a CSV cell, a parquet string) decoded to
// the list; rec itself stays as read.
func (m Mapping) decodeMessageLists(rec map[string]any, names ...string) (map[string]any, error) {
	f := rec
	for _, name := range names {
		if name == "" {
			continue // a column the mapping does not read
		}
		list, ok, err := m.jsonMessages(rec[name], name)
		if err != nil {
			return nil, err
		}
		if ok {
			f = maps.Clone(f)
			f[name] = list
		}
	}
	return f, nil
}

// jsonMessages reads v, a field's value, as a list of messages when it is
// a string holding a JSON list of objects with a role (ok false
// otherwise: other text is text).
func (m Mapping) jsonMessages(v any, name string) (list []any, ok bool, err error) {
	s, isText := v.(string)
	if !isText || !strings.HasPrefix(strings.TrimSpace(s), "[") {
		return nil, false, nil
	}
	if err := stringValues(s, fmt.Sprintf("field %q", name)); err != nil {
		return nil, false, err
	}
	if err := json.Unmarshal([]byte(s), &list); err != nil || len(list) == 0 {
		return nil, false, nil
	}
	for _, item := range list {
		obj, isObj := item.(map[string]any)
		if !isObj {
			return nil, false, nil
		}
		if _, hasRole := obj[m.Role]; !hasRole {
			return nil, false, nil
		}
	}
	if off, bad := loneSurrogate([]byte(s)); bad {
		return nil, false, fmt.Errorf("%w: field %q: the JSON list of messages has a lone UTF-16 surrogate escape at byte %d (JSON readers would write U+FFFD for it)", ErrInvalidUTF8, name, off+1)
	}
	if err := repeatedKey([]byte(s), name); err != nil {
		return nil, false, err
	}
	return list, true, nil
}

// repeatedKey refuses a key that appears twice in one object of s, field
// name's JSON list of messages held as a string, as the JSON readers
// refuse it in a record: the last value would be read, and a call's
// arguments would keep both.
func repeatedKey(s []byte, name string) error {
	if k, _, dup := duplicateKey(s); dup {
		return fmt.Errorf("%w: field %q: the JSON list of messages has key %q twice in one object (JSON readers keep only the last value)", ErrBadValue, name, k)
	}
	return nil
}

// commonPrefix is the length of the longest shared beginning of a and b.
func commonPrefix[E any](a, b []E, equal func(E, E) bool) int {
	n := 0
	for n < len(a) && n < len(b) && equal(a[n], b[n]) {
		n++
	}
	return n
}
