package subject

import (
	"reflect"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// TestChatSystemColumn: subject.yaml's columns.system with shape chat
// (or sharegpt) names the field each record's system prompt is read from,
// and that prompt goes before subject.yaml's own system.
func TestChatSystemColumn(t *testing.T) {
	root := writeTree(t, map[string]string{
		"geo/subject.yaml": "shape: sharegpt\ncolumns: {system: persona}\nsystem: Answer briefly.\n",
		"geo/train.jsonl": `{"persona":"Always answer in French.","conversations":[{"from":"human","value":"Capital of Peru?"},{"from":"gpt","value":"Lima"}]}` + "\n" +
			`{"conversations":[{"from":"human","value":"Capital of Chad?"},{"from":"gpt","value":"N'Djamena"}]}` + "\n",
	})
	m, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	exs, _, err := m.Subjects[0].Load(Train, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]format.Message{
		{{Role: "system", Content: "Always answer in French."}, {Role: "user", Content: "Capital of Peru?"}, {Role: "assistant", Content: "Lima"}},
		{{Role: "system", Content: "Answer briefly."}, {Role: "user", Content: "Capital of Chad?"}, {Role: "assistant", Content: "N'Djamena"}},
	}
	if len(exs) != 2 || !reflect.DeepEqual(exs[0].Messages, want[0]) || !reflect.DeepEqual(exs[1].Messages, want[1]) {
		t.Errorf("got %+v\nwant %+v", exs, want)
	}
}
