package format

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestTextFieldTypes: a field read as text holds a string. A number or a
// boolean there (`"completion": 5`) is refused naming the file, line,
// field and the type found: how a number is written as text (5, 5.0,
// 5e0) is the writer's to say, and a number where text belongs is most
// often another column read by a guessed name. A CSV or TSV cell is
// always text, and is read as written; a parquet column of numbers is
// refused as JSON's are.
func TestTextFieldTypes(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, want string
		line                      int
	}{
		{"a number completion", "n.jsonl", `{"prompt": "2+3?", "completion": "5"}` + "\n" + `{"prompt": "2+2?", "completion": 4}`, `field "completion": expected a string, got a number (4)`, 2},
		{"a boolean output", "b.jsonl", `{"instruction": "True?", "output": true}`, `field "output": expected a string, got a boolean (true)`, 1},
		{"a number instruction", "a.json", "[\n" + `{"instruction": 7, "output": "seven"}` + "\n]", `field "instruction": expected a string, got a number (7)`, 2},
		{"a number in a message", "m.jsonl", `{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": 4}]}`, `messages[1]: bad value: field "content": expected a string, got a number (4)`, 1},
		{"a number in a history", "h.jsonl", `{"instruction": "I", "output": "O", "history": [["1+1?", 2]]}`, `field "history[0][1]": expected a string, got a number (2)`, 1},
		{"a number system", "s.jsonl", `{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "system": 1}`, `field "system": expected a string, got a number (1)`, 1},
		{"a number preference answer", "p.jsonl", `{"prompt": "2+2?", "chosen": 4, "rejected": "5"}`, `field "chosen": expected a string, got a number (4)`, 1},
		{"a number text", "t.jsonl", `{"text": 12}`, `field "text": expected a string, got a number (12)`, 1},
		// A null content is an error but in an assistant message that
		// calls tools (OpenAI's files write it so).
		{"null content in a user message", "u.jsonl", `{"messages": [{"role": "user", "content": null}, {"role": "assistant", "content": "a"}]}`, `messages[0]: "content" is null`, 1},
		{"null value in a ShareGPT turn", "g.jsonl", `{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": null}]}`, `conversations[1]: "value" is null`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, tc.file, tc.content, Options{})
			var pe *PosError
			if !errors.As(err, &pe) || !errors.Is(err, ErrBadValue) || pe.Line != tc.line || !strings.Contains(err.Error(), tc.file) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a bad value at %s:%d saying %q", err, tc.file, tc.line, tc.want)
			}
		})
	}

	// CSV cells are text: "4" is the answer 4, as written.
	got, err := readRecords(t, "c.csv", "prompt,completion\n2+2?,4\n", Options{})
	if want := []Example{{Messages: chat("user", "2+2?", "assistant", "4"), TextPair: true, Source: "c.csv:2"}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CSV: got %+v, %v; want %+v", got, err, want)
	}
	// A null content in an assistant message that calls a tool is "".
	got, err = readRecords(t, "t.jsonl", `{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "content": "r"}, {"role": "assistant", "content": "a"}]}`, Options{})
	if err != nil || len(got) != 1 || got[0].Messages[1].Content != "" || len(got[0].Messages[1].ToolCalls) != 1 {
		t.Errorf("a call with null content: got %+v, %v", got, err)
	}

	// Parquet gives typed columns: an int64 or a float64 where text is
	// expected is refused as JSON's number is (the column, not the
	// record, is the mistake, and the message says its type).
	m, _ := Detect(map[string]any{"prompt": "q", "completion": "a"})
	for _, v := range []any{int64(4), int32(4), float64(4.5), float32(4.5), true, json.Number("4")} {
		_, err := m.toExample(map[string]any{"prompt": "2+2?", "completion": v}, nil)
		if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), `field "completion": expected a string, got a`) {
			t.Errorf("completion %T %v: err = %v, want a bad value naming the field and type", v, v, err)
		}
	}
}
