package format

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestOtherToolsChat: chat data as other tools write it — content as a
// list of parts (OpenAI's Chat Completions and Responses API), the
// developer role, ShareGPT's names for the chatbot — is read as they
// mean it, each reading that a reader might not guess said once a file.
func TestOtherToolsChat(t *testing.T) {
	partsNote := "message content given as a list of parts (OpenAI's) is read as the text of its parts, joined with nothing between them, as chat templates render them (first on line 1)"
	tests := []struct {
		name, file, content string
		want                [][]Message // each example's messages
		notes               []string
	}{
		{"text parts joined", "d.jsonl",
			`{"messages": [{"role": "user", "content": [{"type": "text", "text": "Capital of France? "}, {"type": "text", "text": "One word."}]}, {"role": "assistant", "content": [{"type": "text", "text": "Paris"}]}]}`,
			[][]Message{chat("user", "Capital of France? One word.", "assistant", "Paris")}, []string{partsNote}},
		{"responses api parts", "d.jsonl",
			`{"messages": [{"role": "system", "content": [{"type": "input_text", "text": "Be brief."}]}, {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}, {"role": "assistant", "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}]}`,
			[][]Message{chat("system", "Be brief.", "user", "Hi", "assistant", "Hello")}, []string{partsNote}},
		{"parts beside strings, noted once", "d.jsonl",
			`{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}, {"role": "assistant", "content": "b"}]}` + "\n" +
				`{"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "content": [{"type": "text", "text": "d"}]}]}`,
			[][]Message{chat("user", "a", "assistant", "b"), chat("user", "c", "assistant", "d")}, []string{partsNote}},
		{"no parts, no note", "d.jsonl",
			`{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`,
			[][]Message{chat("user", "a", "assistant", "b")}, nil},
		{"empty parts of a tool call", "d.jsonl",
			`{"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": [], "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": "{}"}}]}, {"role": "tool", "content": [{"type": "text", "text": "sun"}]}, {"role": "assistant", "content": "Sunny."}]}`,
			[][]Message{{{Role: "user", Content: "Weather?"}, {Role: "assistant", ToolCalls: []ToolCall{{Name: "w", Arguments: "{}"}}}, {Role: "tool", Content: "sun"}, {Role: "assistant", Content: "Sunny."}}},
			[]string{partsNote}},
		{"a field repeating a part", "d.jsonl", // ultrachat_200k's prompt beside its messages
			`{"prompt": "Capital of France?", "messages": [{"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}, {"role": "assistant", "content": "Paris"}]}`,
			[][]Message{chat("user", "Capital of France?", "assistant", "Paris")}, []string{partsNote}},
		{"csv cell", "d.csv",
			"messages\n\"[{\"\"role\"\": \"\"user\"\", \"\"content\"\": [{\"\"type\"\": \"\"text\"\", \"\"text\"\": \"\"q\"\"}]}, {\"\"role\"\": \"\"assistant\"\", \"\"content\"\": \"\"a\"\"}]\"\n",
			[][]Message{chat("user", "q", "assistant", "a")},
			[]string{strings.Replace(partsNote, "line 1", "line 2", 1)}},
		{"prompt/completion parts", "d.jsonl",
			`{"prompt": [{"role": "user", "content": [{"type": "text", "text": "q"}]}], "completion": [{"role": "assistant", "content": [{"type": "text", "text": "a"}]}]}`,
			[][]Message{chat("user", "q", "assistant", "a")}, []string{partsNote}},
		{"developer is system", "d.jsonl",
			`{"messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}` + "\n" +
				`{"messages": [{"role": "developer", "content": "Be kind."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}`,
			[][]Message{chat("system", "Be brief.", "user", "Hi", "assistant", "Hello"), chat("system", "Be kind.", "user", "Hi", "assistant", "Hello")},
			[]string{`role "developer" (OpenAI's name for the system message of its newer models) is read as system (first on line 1)`}},
		{"sharegpt chatbots", "d.jsonl",
			`{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}` + "\n" +
				`{"conversations": [{"from": "user", "value": "c"}, {"from": "bing", "value": "d"}, {"from": "human", "value": "e"}, {"from": "chatgpt", "value": "f"}, {"from": "human", "value": "g"}, {"from": "Bard", "value": "h"}]}`,
			[][]Message{chat("user", "a", "assistant", "b"), chat("user", "c", "assistant", "d", "user", "e", "assistant", "f", "user", "g", "assistant", "h")},
			[]string{
				`role "bing" (ShareGPT's name for the chatbot that answered) is read as assistant (first on line 2)`,
				`role "chatgpt" (ShareGPT's name for the chatbot that answered) is read as assistant (first on line 2)`,
				`role "bard" (ShareGPT's name for the chatbot that answered) is read as assistant (first on line 2)`,
			}},
		{"a transcript's segments are not axolotl's", "d.jsonl",
			`{"text": "Hello there.", "segments": [{"start": 0, "end": 1.5, "text": "Hello there."}]}`,
			[][]Message{nil}, nil}, // a completion: its text, no messages
		{"openassistant prompter", "d.jsonl",
			`{"conversations": [{"from": "prompter", "value": "a"}, {"from": "assistant", "value": "b"}]}`,
			[][]Message{chat("user", "a", "assistant", "b")},
			[]string{`role "prompter" (OpenAssistant's name for the user) is read as user (first on line 1)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exs, notes, err := readNotes(t, tc.file, tc.content, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got [][]Message
			for _, ex := range exs {
				got = append(got, ex.Messages)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("messages\n got %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(notes, tc.notes) {
				t.Errorf("notes\n got %q\nwant %q", notes, tc.notes)
			}
		})
	}
}

// TestOtherToolsChatRefused: what ftune cannot read as the tools mean it
// is refused at its file and line, naming the message, the part and what
// was expected.
func TestOtherToolsChatRefused(t *testing.T) {
	msg := func(content string) string {
		return `{"messages": [{"role": "user", "content": "Look:"}, {"role": "user", "content": ` + content + `}, {"role": "assistant", "content": "A cat."}]}`
	}
	tests := []struct {
		name, content string
		sentinel      error
		parts         []string // expected parts of the message
	}{
		{"image part", msg(`[{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]`), ErrBadValue,
			[]string{"d.jsonl:2:1: ", `messages[1]: bad value: "content" part 1 is of type "image_url": ftune trains text models and reads only text parts ("text", "input_text" or "output_text")`}},
		{"audio part", msg(`[{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]`), ErrBadValue,
			[]string{"d.jsonl:2:1: ", `messages[1]: bad value: "content" part 0 is of type "input_audio"`}},
		{"file part", msg(`[{"type": "file", "file": {"file_id": "f"}}]`), ErrBadValue,
			[]string{`messages[1]: bad value: "content" part 0 is of type "file"`}},
		{"text missing", msg(`[{"type": "text"}]`), ErrBadValue,
			[]string{"d.jsonl:2:1: ", `messages[1]: bad value: "content" part 0 (type "text") has no "text": expected a string`}},
		{"text null", msg(`[{"type": "input_text", "text": null}]`), ErrBadValue,
			[]string{`messages[1]: bad value: "content" part 0 (type "input_text") has no "text": expected a string`}},
		{"text a number", msg(`[{"type": "text", "text": 4}]`), ErrBadValue,
			[]string{"d.jsonl:2:1: ", `messages[1]: "content" part 0 (type "text"): bad value: field "text": expected a string, got a number (4)`}},
		{"text a list", msg(`[{"type": "text", "text": ["a"]}]`), ErrBadValue,
			[]string{`messages[1]: "content" part 0 (type "text"): bad value: field "text": expected a string, got a list`}},
		{"no type", msg(`[{"text": "a"}]`), ErrBadValue,
			[]string{`messages[1]: bad value: "content" part 0 has no "type" string (got null): expected one of "text", "input_text" or "output_text"`}},
		{"part not an object", msg(`["a"]`), ErrBadValue,
			[]string{`messages[1]: bad value: "content" part 0: expected an object {"type": "text", "text": ...}, got a string`}},
		{"empty parts", msg(`[]`), ErrBadValue,
			[]string{`messages[1]: bad value: "content" is an empty list of parts (expected text parts`}},
		{"unknown role", `{"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}` + "\n" +
			`{"conversations": [{"from": "human", "value": "a"}, {"from": "claude", "value": "b"}]}`, ErrUnknownRole,
			[]string{"d.jsonl:2:1: ", `unknown role "claude" (want system (or developer), user (or human, prompter), assistant (or gpt, model, bot, chatgpt, bing, bard), tool (or function, ipython, observation) or function_call)`}},
		{"axolotl segments", `{"segments": [{"label": false, "text": "Hello\n"}, {"label": true, "text": "hi there!"}]}`, ErrUnsupported,
			[]string{"d.jsonl:1:1: ", `field "segments" holds Axolotl's template-free input_output segments`, `write {"prompt": <the unlabelled text>, "completion": <the labelled text>} and set data.template none`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			content := tc.content
			if strings.HasPrefix(content, `{"messages": [{"role": "user", "content": "Look:"}`) {
				content = `{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}` + "\n" + content // line 2
			}
			_, _, err := readNotes(t, "d.jsonl", content, Options{})
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want %v", err, tc.sentinel)
			}
			for _, p := range tc.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("err = %v\nwant it to hold %q", err, p)
				}
			}
		})
	}
}

// TestSkippedRecordSaysNothing: a record skipped as bad (data.skip_bad)
// is not read, so what reading it would have noted is not said.
func TestSkippedRecordSaysNothing(t *testing.T) {
	content := `{"messages": [{"role": "developer", "content": "s"}, {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}, {"role": "assistant", "content": "b"}]}` + "\n" +
		`{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`
	exs, notes, err := readNotes(t, "d.jsonl", content, Options{Skip: true})
	if err != nil || len(exs) != 1 {
		t.Fatalf("%d examples, %v; want 1", len(exs), err)
	}
	if len(notes) != 0 {
		t.Errorf("notes %q, want none: the record that would have them was skipped", notes)
	}
}
