package format

import (
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readRecords(t *testing.T, file, content string, opts Options) ([]Example, error) {
	t.Helper()
	r, err := Open(writeFile(t, file, content), opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var got []Example
	for {
		ex, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		ex.Source = filepath.Base(ex.Source)
		got = append(got, ex)
	}
}

// TestPreferenceShapes: TRL's preference layouts, detected from chosen and
// rejected: text, conversational with a prompt, and the implicit prompt
// (the shared beginning) of both, a text prompt beside whole
// conversations, and a CSV of text.
func TestPreferenceShapes(t *testing.T) {
	user := `{"role":"user","content":"What color is the sky?"}`
	blue, green := `{"role":"assistant","content":"It is blue."}`, `{"role":"assistant","content":"It is green."}`
	convPrompt := chat("user", "What color is the sky?")
	for _, tc := range []struct {
		name, file, content string
		want                Example
	}{
		{"text", "p.jsonl", `{"prompt":"The sky is","chosen":" blue.","rejected":" green."}`,
			Example{Text: "The sky is", Chosen: &Reply{Text: " blue."}, Rejected: &Reply{Text: " green."}, Source: "p.jsonl:1"}},
		{"conversational", "p.jsonl", `{"prompt":[` + user + `],"chosen":[` + blue + `],"rejected":[` + green + `]}`,
			Example{Messages: convPrompt, Chosen: &Reply{Messages: chat("assistant", "It is blue.")}, Rejected: &Reply{Messages: chat("assistant", "It is green.")}, Source: "p.jsonl:1"}},
		{"implicit conversational", "p.jsonl", `{"chosen":[` + user + `,` + blue + `],"rejected":[` + user + `,` + green + `]}`,
			Example{Messages: convPrompt, Chosen: &Reply{Messages: chat("assistant", "It is blue.")}, Rejected: &Reply{Messages: chat("assistant", "It is green.")}, Source: "p.jsonl:1"}},
		{"implicit text: the space before the difference goes with the completions", "p.jsonl", `{"chosen":"The sky is blue.","rejected":"The sky is green."}`,
			Example{Text: "The sky is", Chosen: &Reply{Text: " blue."}, Rejected: &Reply{Text: " green."}, Source: "p.jsonl:1"}},
		{"a text prompt beside whole conversations", "p.jsonl", `{"prompt":"What color is the sky?","chosen":[` + user + `,` + blue + `],"rejected":[` + user + `,` + green + `]}`,
			Example{Messages: convPrompt, Chosen: &Reply{Messages: chat("assistant", "It is blue.")}, Rejected: &Reply{Messages: chat("assistant", "It is green.")}, Source: "p.jsonl:1"}},
		{"csv", "p.csv", "prompt,chosen,rejected\n\"Two plus two is\", 4, 5\n",
			Example{Text: "Two plus two is", Chosen: &Reply{Text: " 4"}, Rejected: &Reply{Text: " 5"}, Source: "p.csv:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, tc.file, tc.content, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if !got[0].IsPreference() {
				t.Error("IsPreference is false")
			}
			full := got[0].Completed(got[0].Chosen)
			if full.IsPreference() || (full.IsChat() != got[0].IsChat()) {
				t.Errorf("Completed: %+v", full)
			}
		})
	}
}

// TestPreferenceRefusals: records DPO cannot learn from are refused with
// the file position and the reason.
func TestPreferenceRefusals(t *testing.T) {
	user := `{"role":"user","content":"Q"}`
	for _, tc := range []struct{ name, content, want string }{
		{"the same completions", `{"prompt":"Q","chosen":"A","rejected":"A"}`, "the same"},
		{"a user turn in a completion", `{"prompt":[` + user + `],"chosen":[` + user + `],"rejected":[{"role":"assistant","content":"B"}]}`, "chosen[0] is a user message"},
		{"an empty completion", `{"prompt":"Q","chosen":"","rejected":"B"}`, `"chosen" is empty`},
		{"no shared beginning", `{"chosen":"A","rejected":"B"}`, "share no beginning"},
		{"conversations that differ from the first message", `{"chosen":[{"role":"user","content":"Q1"}],"rejected":[{"role":"user","content":"Q2"}]}`, "no prompt"},
		{"a null prompt", `{"prompt":null,"chosen":"A","rejected":"B"}`, `"prompt" is null`},
		{"a completion that is an object", `{"prompt":"Q","chosen":{"x":1},"rejected":"B"}`, "expected a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "bad.jsonl", tc.content, Options{})
			var pe *PosError
			if err == nil || !errors.As(err, &pe) || pe.Line != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a position error at line 1 saying %q", err, tc.want)
			}
		})
	}
	// Without chosen and rejected a record is not a preference: a
	// preference shape set by hand names the missing field.
	_, err := readRecords(t, "p.jsonl", `{"prompt":"Q","chosen":"A"}`, Options{Mapping: Mapping{Shape: ShapePreference}})
	if err == nil || !strings.Contains(err.Error(), `"rejected"`) {
		t.Errorf("a record without rejected: err = %v", err)
	}
}
