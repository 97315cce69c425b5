package format

import (
	"fmt"
	"strings"
)

// unpaired reads an unpaired preference record, TRL's unpaired preference
// layout (KTO's data: one completion, thumbs up or down): a prompt, a
// completion of it and a label, true when the completion is desirable.
// Prompt and completion are text (the completion continuing the prompt's
// text) or lists of messages (the completion the assistant's messages
// after the prompt); a text completion after a list of messages is the
// assistant's answer, as in a preference record. The completion is the
// example's Chosen when desirable and its Rejected when not, the names
// TRL's KTOTrainer logs them under (rewards/chosen, rewards/rejected).
//
// CSV and TSV cells are text: a prompt or completion holding a JSON list
// of messages is read as that list, and a label true or false in any case
// as the boolean (in JSON the label is a boolean: a string is refused).
//
// LLaMA-Factory's KTO data is read here too (Detect maps its kto_tag to
// the label): an alpaca record, whose prompt is its instruction as a
// preference record's is (Mapping.Instruction) and whose output is the
// completion, or a conversation (Mapping.Messages) whose last message is
// the completion and the rest the prompt, as LLaMA-Factory splits it.
func (m Mapping) unpaired(rec map[string]any, raw rawJSON) (Example, error) {
	var ex Example
	f, err := m.decodeMessageLists(rec, m.Prompt, m.Completion)
	if err != nil {
		return ex, err
	}
	if err := m.unreadPrompt(f); err != nil {
		return ex, err
	}
	// A record with JSON text (raw) had booleans to write its label in.
	desirable, err := label(f, m.Label, raw != nil)
	if err != nil {
		return ex, err
	}
	if m.Messages != "" {
		return m.unpairedConversation(f, raw, desirable)
	}
	for _, name := range []string{m.promptColumns()[0], m.Completion} {
		if v, ok := f[name]; !ok {
			return ex, fmt.Errorf("%w %q", ErrMissingColumn, name)
		} else if v == nil {
			return ex, fmt.Errorf("%w: field %q is null", ErrBadValue, name)
		}
	}
	_, promptChat := f[m.Prompt].([]any)
	_, completionChat := f[m.Completion].([]any)
	r := &Reply{}
	switch {
	case promptChat || m.Instruction != "":
		var p []Message
		if m.Instruction != "" {
			p, err = m.alpacaTurns(f)
		} else {
			p, err = m.messageList(f, m.Prompt, fieldJSON(rec, raw, m.Prompt))
		}
		if err != nil {
			return ex, err
		}
		if completionChat {
			if r.Messages, err = m.messageList(f, m.Completion, fieldJSON(rec, raw, m.Completion)); err != nil {
				return ex, err
			}
		} else {
			t, err := field(f, m.Completion, true)
			if err != nil {
				return ex, err
			}
			r.Messages = []Message{{Role: RoleAssistant, Content: t}} // a bare answer
		}
		if ex.Messages, err = m.withSystem(f, p, "the prompt"); err != nil {
			return ex, err
		}
	case completionChat:
		return ex, fmt.Errorf("%w: field %q is text and %q is a list of messages: give the prompt as a list of messages too ([{\"role\": \"user\", \"content\": ...}]), or both as text", ErrBadValue, m.Prompt, m.Completion)
	default:
		if ex.Text, err = field(f, m.Prompt, true); err != nil {
			return ex, err
		}
		if r.Text, err = field(f, m.Completion, true); err != nil {
			return ex, err
		}
		if s, err := field(f, m.System, false); err != nil {
			return ex, err
		} else if m.System != "" && s != "" {
			return ex, fmt.Errorf("%w: field %q holds a system prompt, which a text prompt has no place for (give the prompt as a list of messages to have one)", ErrBadValue, m.System)
		}
	}
	return labelled(ex, r, desirable)
}

// labelled is ex with its completion r as its Chosen when desirable and
// as its Rejected when not.
func labelled(ex Example, r *Reply, desirable bool) (Example, error) {
	if desirable {
		ex.Chosen = r
	} else {
		ex.Rejected = r
	}
	return ex, ex.Validate()
}

// unpairedConversation reads an unpaired record that is one conversation
// (LLaMA-Factory's KTO data in ShareGPT or OpenAI form): its last message,
// the assistant's, is the completion, and the messages before it the
// prompt.
func (m Mapping) unpairedConversation(f map[string]any, raw rawJSON, desirable bool) (Example, error) {
	var ex Example
	msgs, err := m.messageList(f, m.Messages, fieldJSON(f, raw, m.Messages))
	if err != nil {
		return ex, err
	}
	last := msgs[len(msgs)-1]
	switch {
	case last.Role != RoleAssistant:
		return ex, fmt.Errorf("%w: field %q: the last message is the completion, whose label %q is, and it is a %s message: end the conversation with the assistant's answer", ErrBadValue, m.Messages, m.Label, last.Role)
	case len(msgs) == 1:
		return ex, fmt.Errorf("%w: field %q: the last message is the completion, and there is no message before it to be its prompt", ErrBadValue, m.Messages)
	}
	if ex.Messages, err = m.withSystem(f, msgs[:len(msgs)-1], "the prompt"); err != nil {
		return ex, err
	}
	return labelled(ex, &Reply{Messages: []Message{last}}, desirable)
}

// label reads an unpaired record's label: a boolean, or, where the
// record's values are text (a CSV cell; fromJSON false), the text true
// or false in any case. Anything else (1, "yes", "👍") is refused rather
// than guessed at: a label read the wrong way round trains the opposite.
// In JSON a string is refused too, as a string weight is: a file that
// quotes its labels may hold other words beside them, and the format
// has the booleans.
func label(f map[string]any, name string, fromJSON bool) (bool, error) {
	v, ok := f[name]
	if !ok {
		return false, fmt.Errorf("%w %q", ErrMissingColumn, name)
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if fromJSON {
			return false, fmt.Errorf("%w: field %q is the string %q: write true or false, without quotes (a JSON boolean: whether the completion is desirable)", ErrBadValue, name, x)
		}
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, fmt.Errorf("%w: field %q is %q: expected true or false (whether the completion is desirable)", ErrBadValue, name, x)
	}
	return false, fmt.Errorf("%w: field %q: expected true or false (whether the completion is desirable), got %s", ErrBadValue, name, typeName(v))
}
