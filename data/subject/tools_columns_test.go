package subject

import (
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// TestToolsColumn: subject.yaml's columns rename a file's list of tools
// as they rename its other fields (it named the keys it knew and refused
// "tools"); a completion, which no template renders, reads none.
func TestToolsColumn(t *testing.T) {
	root := writeTree(t, map[string]string{
		"calls/subject.yaml": "shape: chat\ncolumns: {tools: functions_json}\n",
		"calls/train.jsonl": `{"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"weather","arguments":{}}}]},{"role":"tool","content":"sun"},{"role":"assistant","content":"Sunny."}],` +
			`"functions_json":"[{\"type\": \"function\", \"function\": {\"name\": \"weather\"}}]"}` + "\n",
	})
	m, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := m.Subject("calls")
	exs, _, err := s.Load(Train, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 1 || exs[0].Tools != `[{"type":"function","function":{"name":"weather"}}]` || len(exs[0].Messages[1].ToolCalls) != 1 {
		t.Fatalf("got %+v", exs)
	}
	text := writeTree(t, map[string]string{
		"text/subject.yaml": "shape: completion\ncolumns: {tools: fns}\n",
		"text/train.jsonl":  `{"text":"Sunny."}` + "\n",
	})
	if _, err := Open(text); err == nil || !strings.Contains(err.Error(), `shape completion does not read "tools"`) {
		t.Errorf("a tools column on a completion subject: %v", err)
	}
}
