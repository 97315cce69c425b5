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
		{"a label that is a word", `{"prompt":"Q","completion":"A","label":"yes"}`, `"label" is "yes": expected true or false`},
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
