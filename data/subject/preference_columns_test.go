package subject

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// TestPreferenceColumns: subject.yaml's columns map a preference file's
// prompt, chosen and rejected fields (and role and content inside its
// lists of messages), as format.Mapping does for data files; a key the
// shape does not read is refused rather than mapping nothing.
func TestPreferenceColumns(t *testing.T) {
	root := writeTree(t, map[string]string{
		"tone/subject.yaml": "shape: preference\ncolumns: {prompt: question, chosen: good, rejected: bad}\n",
		"tone/train.jsonl":  `{"question":"Capital of Peru?","good":" Lima.","bad":" Cusco."}` + "\n",
		"chat/subject.yaml": "shape: preference\ncolumns: {prompt: q, chosen: good, rejected: bad, role: from, content: value}\n",
		"chat/train.jsonl":  `{"q":[{"from":"user","value":"Capital of Peru?"}],"good":[{"from":"assistant","value":"Lima"}],"bad":[{"from":"assistant","value":"Cusco"}]}` + "\n",
	})
	m, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]format.Example{
		"tone": {Text: "Capital of Peru?", Chosen: &format.Reply{Text: " Lima."}, Rejected: &format.Reply{Text: " Cusco."}},
		"chat": {Messages: []format.Message{{Role: "user", Content: "Capital of Peru?"}}, Chosen: &format.Reply{Messages: []format.Message{{Role: "assistant", Content: "Lima"}}}, Rejected: &format.Reply{Messages: []format.Message{{Role: "assistant", Content: "Cusco"}}}},
	} {
		s, _ := m.Subject(name)
		exs, _, err := s.Load(Train, format.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		exs[0].Source = ""
		if len(exs) != 1 || !reflect.DeepEqual(exs[0], want) {
			t.Errorf("%s: got %+v, want %+v", name, exs, want)
		}
	}
	for yaml, msg := range map[string]string{
		"shape: chat\ncolumns: {chosen: good}\n":          `shape chat does not read "chosen" (its columns: messages, role, content, system, tools)`,
		"shape: input_output\ncolumns: {rejected: x}\n":   `shape input_output does not read "rejected"`,
		"shape: completion\ncolumns: {system: persona}\n": `shape completion does not read "system"`,
	} {
		_, err := Open(writeTree(t, map[string]string{"a/subject.yaml": yaml, "a/train.jsonl": qa("q", "a")}))
		if err == nil || !strings.Contains(err.Error(), "subject.yaml") || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", yaml, err, msg)
		}
	}
}
