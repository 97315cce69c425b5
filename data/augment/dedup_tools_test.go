package augment

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// TestDedupExamplesToolCalls: examples that differ only in a tool call (its
// arguments, its id), a tool result's id or name, or their tools are not
// merged as duplicates; the same conversation twice still is.
func TestDedupExamplesToolCalls(t *testing.T) {
	conv := func(args, id, result, tools string) format.Example {
		return format.Example{Tools: tools, Messages: []format.Message{
			{Role: format.RoleUser, Content: "Weather?"},
			{Role: format.RoleAssistant, ToolCalls: []format.ToolCall{{ID: id, Name: "get_weather", Arguments: args}}},
			{Role: format.RoleTool, Content: "18", ToolCallID: id, Name: result},
			{Role: format.RoleAssistant, Content: "18."},
		}}
	}
	paris, oslo := `{"city":"Paris"}`, `{"city":"Oslo"}`
	tools := `[{"type":"function","function":{"name":"get_weather"}}]`
	for _, tc := range []struct {
		name string
		a, b format.Example
		dups int
	}{
		{"the same", conv(paris, "c1", "get_weather", tools), conv(paris, "c1", "get_weather", tools), 1},
		{"arguments", conv(paris, "c1", "get_weather", tools), conv(oslo, "c1", "get_weather", tools), 0},
		{"tools", conv(paris, "c1", "get_weather", tools), conv(paris, "c1", "get_weather", ""), 0},
		{"result name", conv(paris, "c1", "get_weather", ""), conv(paris, "c1", "get_forecast", ""), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, n, err := DedupExamples([]format.Example{tc.a, tc.b}, DedupOptions{Seed: 1})
			if err != nil || n != tc.dups || len(out) != 2-tc.dups {
				t.Errorf("removed %d of 2 (want %d), %v", n, tc.dups, err)
			}
		})
	}
}

// TestDedupExamplesToolCallsInLongConversations: a call's arguments keep
// apart conversations whose words are otherwise the same, however long;
// random call ids do not keep duplicates apart.
func TestDedupExamplesToolCallsInLongConversations(t *testing.T) {
	long := "the quick brown fox jumps over the lazy dog while the farmer watches from the old red barn near the river bank at dawn"
	var w []string
	for i := range 60 {
		w = append(w, fmt.Sprint("word", i))
	}
	words := strings.Join(w, " ")
	conv := func(args, id string) format.Example {
		return format.Example{Messages: []format.Message{
			{Role: format.RoleUser, Content: words},
			{Role: format.RoleAssistant, ToolCalls: []format.ToolCall{{ID: id, Name: "get_weather", Arguments: args}}},
			{Role: format.RoleTool, Content: "18", ToolCallID: id},
			{Role: format.RoleAssistant, Content: long},
		}}
	}
	exs := []format.Example{conv(`{"city":"Paris"}`, "c1"), conv(`{"city":"Oslo"}`, "c2"), conv(`{"city":"Paris"}`, "c3"), {Text: long}}
	out, n, err := DedupExamples(exs, DedupOptions{Seed: 1})
	if err != nil || n != 1 || len(out) != 3 || out[1].Messages[1].ToolCalls[0].ID != "c2" || out[2].Text != long {
		t.Errorf("removed %d, kept %+v, %v; want the third removed", n, out, err)
	}
}
