package format

import (
	"errors"
	"strings"
	"testing"
)

// TestCompletionSystemRefused: a completion record (text, learnt in full)
// is never rendered through the chat template, so a system field beside
// its text has nowhere to go: it is refused with the record's line, where
// it used to be dropped without a word. An empty or null one asks for
// nothing and is read as before; prompt/completion and question/answer
// pairs become chat turns and keep it as their system message.
func TestCompletionSystemRefused(t *testing.T) {
	for _, tc := range []struct{ file, content, pos string }{
		{"t.jsonl", `{"text":"One."}` + "\n" + `{"system":"Be brief.","text":"Two."}`, ":2:1:"},
		{"t.csv", "text,system\nOne.,\nTwo.,Be brief.\n", ":3:"},
	} {
		p := writeFile(t, tc.file, tc.content)
		_, _, err := ReadAll(p, Options{})
		if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), p+tc.pos) || !strings.Contains(err.Error(), `field "system" holds a system prompt, which a completion has no place for`) {
			t.Errorf("%s: %v, want the system field refused at %s", tc.file, err, tc.pos)
		}
	}
	p := writeFile(t, "m.jsonl", `{"system":"Be brief.","body":"One."}`)
	if _, _, err := ReadAll(p, Options{Mapping: Mapping{Shape: ShapeCompletion, Text: "body"}}); !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), p+":1:1:") {
		t.Errorf("shape completion by mapping: %v, want the system field refused", err)
	}
	p = writeFile(t, "e.jsonl", `{"system":"","text":"One."}`+"\n"+`{"system":null,"text":"Two."}`)
	if exs, _, err := ReadAll(p, Options{}); err != nil || len(exs) != 2 || exs[1].Text != "Two." {
		t.Errorf("empty system fields: %+v, %v", exs, err)
	}
	for _, rec := range []string{`{"system":"S","prompt":"Q","completion":"A"}`, `{"system":"S","question":"Q","answer":"A"}`} {
		exs, _, err := ReadAll(writeFile(t, "p.jsonl", rec), Options{})
		if err != nil || len(exs) != 1 || len(exs[0].Messages) != 3 || !exs[0].Messages[0].Equal(Message{Role: RoleSystem, Content: "S"}) {
			t.Errorf("%s: %+v, %v; want the system message first", rec, exs, err)
		}
	}
}
