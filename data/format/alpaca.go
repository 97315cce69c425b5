package format

import (
	"encoding/json"
	"fmt"
	"strings"
)

// alpacaTurns are an alpaca record's conversation up to its answer: the
// turns of its history, then its instruction as the user's message, with
// its input after a blank line when it has one (the alpaca layout).
// Preference and feedback records whose prompt is an instruction
// (Mapping.Instruction) read it here too, so that the same record gives
// the same prompt whatever it is trained for.
func (m Mapping) alpacaTurns(f map[string]any) ([]Message, error) {
	instruction, err := field(f, m.Instruction, true)
	if err != nil {
		return nil, err
	}
	if m.Input != "" {
		in, err := field(f, m.Input, false)
		if err != nil {
			return nil, err
		}
		if in != "" {
			instruction += "\n\n" + in
		}
	}
	turns, err := m.history(f)
	if err != nil {
		return nil, err
	}
	return append(turns, Message{Role: RoleUser, Content: instruction}), nil
}

// history reads LLaMA-Factory's alpaca "history": the [instruction,
// response] pairs before the record's own, each a user and an assistant
// turn. Those answers are a conversation's earlier answers, learnt as a
// chat's are (LLaMA-Factory learns them too; data.mask_history leaves
// them out). Absent, null, [] or "" is none; a CSV cell or parquet string
// holding the JSON list is that list. Anything else is refused, since a
// history read in part would train on a conversation the record does not
// hold.
func (m Mapping) history(f map[string]any) ([]Message, error) {
	if m.History == "" {
		return nil, nil
	}
	v := f[m.History]
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		return nil, nil
	} else if ok && strings.HasPrefix(strings.TrimSpace(s), "[") {
		if off, bad := loneSurrogate([]byte(s)); bad {
			return nil, fmt.Errorf("%w: field %q: the JSON list has a lone UTF-16 surrogate escape at byte %d (JSON readers would write U+FFFD for it)", ErrInvalidUTF8, m.History, off+1)
		}
		if err := stringValues(s, fmt.Sprintf("field %q", m.History)); err != nil {
			return nil, err
		}
		var list []any
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return nil, fmt.Errorf("%w: field %q: expected a JSON list of [instruction, response] pairs: %v", ErrBadValue, m.History, err)
		}
		v = list
	}
	if v == nil {
		return nil, nil
	}
	pairs, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: field %q: expected a list of [instruction, response] pairs, got %s", ErrBadValue, m.History, typeName(v))
	}
	turns := make([]Message, 0, 2*len(pairs))
	for i, item := range pairs {
		pair, ok := item.([]any)
		if !ok || len(pair) != 2 {
			got := typeName(item)
			if ok {
				got = fmt.Sprintf("a list of %d", len(pair))
			}
			return nil, fmt.Errorf("%w: field %q: item %d: expected [instruction, response], got %s", ErrBadValue, m.History, i, got)
		}
		for j, role := range []string{RoleUser, RoleAssistant} {
			name := fmt.Sprintf("%s[%d][%d]", m.History, i, j)
			text, err := field(map[string]any{name: pair[j]}, name, true)
			if err != nil {
				return nil, err
			}
			turns = append(turns, Message{Role: role, Content: text})
		}
	}
	return turns, nil
}
