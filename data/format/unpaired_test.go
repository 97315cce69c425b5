package format

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestUnpairedShapes: TRL's unpaired preference layout, detected from
// completion and label (ahead of prompt/completion pairs): text,
// conversational, a conversation prompt with a bare answer, and a CSV of
// text whose labels are the text True and false and whose prompt cell is
// a JSON list of messages. A desirable completion is the example's Chosen,
// an undesirable one its Rejected.
func TestUnpairedShapes(t *testing.T) {
	user := `{"role":"user","content":"What color is the sky?"}`
	blue := `{"role":"assistant","content":"It is blue."}`
	convPrompt := chat("user", "What color is the sky?")
	for _, tc := range []struct {
		name, file, content string
		want                Example
	}{
		{"text, desirable", "u.jsonl", `{"prompt":"The sky is","completion":" blue.","label":true}`,
			Example{Text: "The sky is", Chosen: &Reply{Text: " blue."}, Source: "u.jsonl:1"}},
		{"text, undesirable", "u.jsonl", `{"prompt":"The sky is","completion":" green.","label":false}`,
			Example{Text: "The sky is", Rejected: &Reply{Text: " green."}, Source: "u.jsonl:1"}},
		{"conversational", "u.jsonl", `{"prompt":[` + user + `],"completion":[` + blue + `],"label":true}`,
			Example{Messages: convPrompt, Chosen: &Reply{Messages: chat("assistant", "It is blue.")}, Source: "u.jsonl:1"}},
		{"a bare answer after a conversation, with a system field", "u.jsonl", `{"prompt":[` + user + `],"completion":"It is green.","label":false,"system":"Be brief."}`,
			Example{Messages: append(chat("system", "Be brief."), convPrompt...), Rejected: &Reply{Messages: chat("assistant", "It is green.")}, Source: "u.jsonl:1"}},
		{"csv", "u.csv", "prompt,completion,label\n\"Two plus two is\", 4,True\n\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"2+2?\"\"}]\",5, false \n",
			Example{Text: "Two plus two is", Chosen: &Reply{Text: " 4"}, Source: "u.csv:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, tc.file, tc.content, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got[0], tc.want)
			}
			if !got[0].IsPreference() || !got[0].IsUnpaired() {
				t.Errorf("IsPreference %v, IsUnpaired %v", got[0].IsPreference(), got[0].IsUnpaired())
			}
			if tc.file == "u.csv" {
				want := Example{Messages: chat("user", "2+2?"), Rejected: &Reply{Messages: chat("assistant", "5")}, Source: "u.csv:3"}
				if len(got) != 2 || !reflect.DeepEqual(got[1], want) {
					t.Errorf("the second CSV record: %+v, want %+v", got[1:], want)
				}
			}
		})
	}
	pair := Example{Text: "Q", Chosen: &Reply{Text: "A"}, Rejected: &Reply{Text: "B"}}
	if pair.IsUnpaired() {
		t.Error("a pair is unpaired")
	}
}

// TestUnpairedRefusals: unpaired records KTO cannot learn from are refused
// with the file position and the reason; a label is true or false, never
// guessed.
func TestUnpairedRefusals(t *testing.T) {
	user := `{"role":"user","content":"Q"}`
	for _, tc := range []struct{ name, content, want string }{
		{"a label that is a word", `{"prompt":"Q","completion":"A","label":"yes"}`, `field "label" is the string "yes": write true or false`},
		// JSON has booleans: a string label is refused, as a string weight
		// is (in a CSV, where every cell is text, "TRUE" is read).
		{"a label that is the string TRUE", `{"prompt":"Q","completion":"A","label":"TRUE"}`, `field "label" is the string "TRUE": write true or false, without quotes`},
		{"a label that is the string False", `{"prompt":"Q","completion":"A","label":"False"}`, `field "label" is the string "False": write true or false, without quotes`},
		{"a label that is a number", `{"prompt":"Q","completion":"A","label":1}`, `"label": expected true or false (whether the completion is desirable), got a number`},
		{"a null label", `{"prompt":"Q","completion":"A","label":null}`, `got null`},
		{"no prompt", `{"completion":"A","label":true}`, `missing column "prompt"`},
		{"a null prompt", `{"prompt":null,"completion":"A","label":true}`, `"prompt" is null`},
		{"an empty completion", `{"prompt":"Q","completion":"","label":true}`, `"completion" is empty`},
		{"a text prompt with a conversation completion", `{"prompt":"Q","completion":[{"role":"assistant","content":"A"}],"label":true}`, "give the prompt as a list of messages too"},
		{"a user turn in the completion", `{"prompt":[` + user + `],"completion":[` + user + `],"label":false}`, "completion[0] is a user message"},
		{"a system prompt beside a text prompt", `{"prompt":"Q","completion":"A","label":true,"system":"S"}`, "a text prompt has no place for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "bad.jsonl", tc.content, Options{})
			var pe *PosError
			if err == nil || !errors.As(err, &pe) || pe.Line != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a position error at line 1 saying %q", err, tc.want)
			}
		})
	}
	// A file detected as unpaired from its first record names a later
	// record's missing label; set by hand, the shape names it too.
	_, err := readRecords(t, "u.jsonl", `{"prompt":"Q","completion":"A","label":true}`+"\n"+`{"prompt":"Q","completion":"B"}`, Options{})
	if err == nil || !strings.Contains(err.Error(), `u.jsonl:2:1: missing column "label"`) || !strings.Contains(err.Error(), "unpaired_preference, was detected") {
		t.Errorf("a record without its label: err = %v", err)
	}
	_, err = readRecords(t, "u.jsonl", `{"prompt":"Q","completion":"A"}`, Options{Mapping: Mapping{Shape: ShapeUnpairedPreference}})
	if err == nil || !strings.Contains(err.Error(), `"label"`) {
		t.Errorf("shape set by hand, no label: err = %v", err)
	}
	// prompt/completion without a label stay input/output pairs.
	m, err := Detect(map[string]any{"prompt": "Q", "completion": "A"})
	if err != nil || m.Shape != ShapeInputOutput {
		t.Errorf("prompt/completion detected as %v, %v", m.Shape, err)
	}
}

// TestUnpairedFirstRecordWithoutLabel: a file of feedback whose first
// record lacks its label is read as prompt/completion pairs (TRL's
// prompt-completion layout, supervised), and the first labelled record
// says so, naming the line the shape came from.
func TestUnpairedFirstRecordWithoutLabel(t *testing.T) {
	msgs := `"prompt":[{"role":"user","content":"Q"}],"completion":[{"role":"assistant","content":"A"}]`
	for _, tc := range []struct{ name, content, want string }{
		{"messages", "{" + msgs + "}\n{" + msgs + `,"label":true}`,
			`u.jsonl:2:1: bad value: fields ["label"] would be ignored: this record is unpaired feedback (shape unpaired_preference), and the file's shape is input_output (supervised prompt/completion pairs), detected from its first record, line 1, which has "prompt" and "completion" and no "label": give every record its "label" (true or false), or none`},
		{"text", `{"prompt":"Q","completion":"A"}` + "\n" + `{"prompt":"Q","completion":"B","label":false}`,
			`u.jsonl:2:1: bad value: fields ["label"] would be ignored: this record is unpaired feedback (shape unpaired_preference), and the file's shape is input_output`},
		{"text, then messages", `{"prompt":"Q","completion":"A"}` + "\n{" + msgs + `,"label":true}`,
			`u.jsonl:2:1: bad value: fields ["label"] would be ignored: this record is unpaired feedback`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "u.jsonl", tc.content, Options{})
			if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestConversationalPromptCompletion: TRL's conversational
// prompt-completion layout is a supervised conversation, the prompt's
// messages then the completion's, with the prompt's own answers as
// context (not learnt, as TRL's completion mask leaves them) unless
// given weight 1; a text
// completion after a conversation is the assistant's answer; a JSON list
// in a CSV cell is that list. A text prompt before a list of messages, and
// a completion without an answer, are refused naming the field.
func TestConversationalPromptCompletion(t *testing.T) {
	context := func(m Message) Message { m.NoLoss, m.Context = true, true; return m }
	multi := chat("system", "S", "user", "Q1", "assistant", "A1", "user", "Q2", "assistant", "A2")
	multi[2] = context(multi[2])
	for _, tc := range []struct {
		name, file, content string
		want                []Message
	}{
		{"lists", "c.jsonl", `{"prompt":[{"role":"user","content":"Q"}],"completion":[{"role":"assistant","content":"A"}]}`, chat("user", "Q", "assistant", "A")},
		{"a text completion", "c.jsonl", `{"prompt":[{"role":"user","content":"Q"}],"completion":"A"}`, chat("user", "Q", "assistant", "A")},
		{"a multi-turn prompt", "c.jsonl", `{"prompt":[{"role":"system","content":"S"},{"role":"user","content":"Q1"},{"role":"assistant","content":"A1"},{"role":"user","content":"Q2"}],"completion":[{"role":"assistant","content":"A2"}]}`, multi},
		{"a prompt's answer of weight 1", "c.jsonl", `{"prompt":[{"role":"system","content":"S"},{"role":"user","content":"Q1"},{"role":"assistant","content":"A1","weight":1},{"role":"user","content":"Q2"}],"completion":[{"role":"assistant","content":"A2"}]}`, chat("system", "S", "user", "Q1", "assistant", "A1", "user", "Q2", "assistant", "A2")},
		{"a system field", "c.jsonl", `{"system":"S","prompt":[{"role":"user","content":"Q"}],"completion":[{"role":"assistant","content":"A"}]}`, chat("system", "S", "user", "Q", "assistant", "A")},
		{"a CSV of JSON lists", "c.csv", "prompt,completion\n\"[{\"\"role\"\": \"\"user\"\", \"\"content\"\": \"\"Q\"\"}]\",A\n", chat("user", "Q", "assistant", "A")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, tc.file, tc.content, Options{})
			// Not a text pair: a prompt of messages needs a chat
			// template, which data.template none refuses to go without.
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Messages, tc.want) || got[0].IsPreference() || got[0].TextPair {
				t.Fatalf("got %+v, %v\nwant messages %+v", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, content, want string }{
		{"a text prompt", `{"prompt":"Q","completion":[{"role":"assistant","content":"A"}]}`, `c.jsonl:1:1: bad value: field "prompt" is a string and "completion" is a list of messages: give the prompt as a list of messages too`},
		{"the same shape, named otherwise", `{"prompt":"Q","completion":"A"}` + "\n" + `{"prompt":"Q","response":"B"}`, `c.jsonl:2:1: bad value: fields ["response"] would be ignored: the file's shape, input_output, was detected from its first record, line 1, with the fields ["prompt" "completion" "system" "tools"]`},
		{"a system field and a system message", `{"system":"S","prompt":[{"role":"user","content":"Q"}],"completion":[{"role":"system","content":"T"},{"role":"assistant","content":"A"}]}`, `c.jsonl:1:1: bad value: field "system" holds a system prompt and the conversation (prompt then completion) has a system message too (message 1)`},
		{"an object for a prompt", `{"prompt":{"role":"user","content":"Q"},"completion":"A"}`, `c.jsonl:1:1: bad value: field "prompt": expected text or a list of messages ([{"role": ..., "content": ...}]), got an object`},
		{"no answer", `{"prompt":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}],"completion":[{"role":"user","content":"thanks"}]}`, `c.jsonl:1:1: bad value: field "completion" has no assistant message: the completion is what is learnt`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "c.jsonl", tc.content, Options{})
			if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
	// Text prompt/completion pairs are as they were, marked as text
	// pairs (which data.template none joins as plain text).
	got, err := readRecords(t, "s.jsonl", `{"prompt":"Q","completion":"A"}`+"\n"+`{"prompt":"R","completion":"B"}`, Options{})
	if err != nil || len(got) != 2 || !reflect.DeepEqual(got[1], Example{Messages: chat("user", "R", "assistant", "B"), TextPair: true, Source: "s.jsonl:2"}) {
		t.Errorf("supervised prompt/completion pairs: %+v, %v", got, err)
	}
}

// TestUnpairedExtraFields: a field another layout is detected from, beside
// an unpaired record's prompt, completion and label, is refused naming it
// and the record's line, in the first record as in a later one, as a
// later supervised record's fields that the file's shape would ignore
// are; a record of another layout among unpaired ones is named as that
// layout. Supervised and preference records keep such neighbours
// (tatsu-lab/alpaca's text, ultrafeedback_binarized's messages), and set
// by hand, the shape reads its fields and no others.
func TestUnpairedExtraFields(t *testing.T) {
	un := `"prompt":"Q","completion":"A","label":true`
	for _, tc := range []struct{ name, content, want string }{
		{"chosen", "{" + un + `,"chosen":"B"}`, `u.jsonl:1:1: bad value: fields ["chosen"] would be ignored: the file's shape, unpaired_preference (detected from its first record, line 1), reads "prompt", "completion", "label" and "system" only; give one layout per record, or set data.shape and data.columns`},
		{"messages, later", "{" + un + "}\n{" + un + `,"messages":[{"role":"user","content":"Q"}]}`, `u.jsonl:2:1: bad value: fields ["messages"] would be ignored: the file's shape, unpaired_preference`},
		{"text and response", "{" + un + `,"text":"T","response":"R"}`, `u.jsonl:1:1: bad value: fields ["response" "text"] would be ignored`},
		{"a pair among unpaired records", "{" + un + "}\n{" + un + "}\n" + `{"prompt":"Q","chosen":"A","rejected":"B"}`, `u.jsonl:3:1: bad value: fields ["chosen" "rejected"] would be ignored: this record is shape preference, the file's shape is unpaired_preference (detected from its first record, line 1)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "u.jsonl", tc.content, Options{})
			if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, content string
		opts          Options
	}{
		{"alpaca with text", `{"instruction":"I","input":"","output":"O","text":"### I O"}`, Options{}},
		{"a pair with messages", `{"prompt":"Q","chosen":"A","rejected":"B","messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}]}`, Options{}},
		{"unpaired, set by hand", "{" + un + `,"text":"T"}`, Options{Mapping: Mapping{Shape: ShapeUnpairedPreference}}},
	} {
		if _, err := readRecords(t, "k.jsonl", tc.content, tc.opts); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
