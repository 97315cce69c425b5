package parquet_test

import (
	"reflect"
	"testing"

	"github.com/ftune/ftune/data/format"
)

type pqFunction struct {
	Name      string `parquet:"name"`
	Arguments string `parquet:"arguments"`
}

type pqToolCall struct {
	ID       string     `parquet:"id"`
	Type     string     `parquet:"type"`
	Function pqFunction `parquet:"function"`
}

// pqToolMessage is a message as datasets on the Hub store tool calling
// conversations: one schema for every message, its fields null where the
// message has none (content null beside calls).
type pqToolMessage struct {
	Role       string       `parquet:"role"`
	Content    *string      `parquet:"content,optional"`
	ToolCalls  []pqToolCall `parquet:"tool_calls,optional,list"`
	ToolCallID *string      `parquet:"tool_call_id,optional"`
	Name       *string      `parquet:"name,optional"`
}

type pqToolChat struct {
	Messages []pqToolMessage `parquet:"messages,list"`
	Tools    string          `parquet:"tools"`
}

// pqJSONChat holds the messages as one JSON string, as exports of
// heterogeneous tool calls do.
type pqJSONChat struct {
	Messages string `parquet:"messages"`
	Tools    string `parquet:"tools"`
}

// TestParquetToolCalls: tool calls in parquet list columns (arguments a
// string, content and the tool fields null where absent) and in a string
// column holding the messages' JSON, and tools as a string column (empty:
// none), read with the arguments' and tools' keys in their order.
func TestParquetToolCalls(t *testing.T) {
	s := func(v string) *string { return &v }
	tools := `[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"unit": {}, "city": {}}}}}]`
	wantTools := `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"unit":{},"city":{}}}}}]`
	want := []format.Message{
		{Role: "user", Content: "Weather in Zürich?"},
		{Role: "assistant", ToolCalls: []format.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"unit":"celsius","city":"Zürich"}`}}},
		{Role: "tool", Content: "18°C", ToolCallID: "call_1", Name: "get_weather"},
		{Role: "assistant", Content: "It is 18°C."},
	}
	p := writeParquet(t, []pqToolChat{
		{Messages: []pqToolMessage{
			{Role: "user", Content: s("Weather in Zürich?")},
			{Role: "assistant", ToolCalls: []pqToolCall{{ID: "call_1", Type: "function", Function: pqFunction{"get_weather", `{"unit": "celsius", "city": "Z\u00fcrich"}`}}}},
			{Role: "tool", Content: s("18°C"), ToolCallID: s("call_1"), Name: s("get_weather")},
			{Role: "assistant", Content: s("It is 18°C.")},
		}, Tools: tools},
		{Messages: []pqToolMessage{{Role: "user", Content: s("hi")}, {Role: "assistant", Content: s("hello")}}},
	})
	exs, _, err := format.ReadAll(p, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantExs := []format.Example{
		{Messages: want, Tools: wantTools, Source: p + ": row 1"},
		{Messages: chat("user", "hi", "assistant", "hello"), Source: p + ": row 2"},
	}
	if !reflect.DeepEqual(exs, wantExs) {
		t.Errorf("list columns: got %+v\nwant %+v", exs, wantExs)
	}

	p = writeParquet(t, []pqJSONChat{{
		Messages: `[{"role": "user", "content": "Weather in Zürich?"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"unit": "celsius", "city": "Zürich"}}}]}, ` +
			`{"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18°C"}, {"role": "assistant", "content": "It is 18°C."}]`,
		Tools: tools,
	}})
	exs, _, err = format.ReadAll(p, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantExs = []format.Example{{Messages: want, Tools: wantTools, Source: p + ": row 1"}}
	if !reflect.DeepEqual(exs, wantExs) {
		t.Errorf("a JSON string column: got %+v\nwant %+v", exs, wantExs)
	}
}
