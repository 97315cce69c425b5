package format

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Tool calling records used by the tests: a weather call and its result.
const (
	tcUser = `{"role":"user","content":"Weather in Zürich?"}`
	// OpenAI's layout: arguments a string holding an object (keys not in
	// sorted order, one escaped), content null.
	tcCallOpenAI = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"unit\": \"celsius\", \"city\": \"Z\\u00fcrich\"}"}}]}`
	// transformers' layout: arguments an object, no content, no type.
	tcCallHF     = `{"role":"assistant","tool_calls":[{"id":"call_1","function":{"name":"get_weather","arguments":{"unit":"celsius","city":"Zürich"}}}]}`
	tcResult     = `{"role":"tool","tool_call_id":"call_1","name":"get_weather","content":"18°C"}`
	tcAnswer     = `{"role":"assistant","content":"It is 18°C."}`
	tcToolsList  = `[{"type":"function","function":{"name":"get_weather","description":"Météo","parameters":{"type":"object","required":["city"],"properties":{"unit":{"type":"string"},"city":{"type":"string"}}}}}]`
	tcToolsSpace = `[{"type": "function", "function": {"name": "get_weather", "description": "M\u00e9t\u00e9o", "parameters": {"type": "object", "required": ["city"], "properties": {"unit": {"type": "string"}, "city": {"type": "string"}}}}}]`
)

// tcArgs is the weather call's arguments as read: compact, keys in the
// order written, Unicode as UTF-8.
const tcArgs = `{"unit":"celsius","city":"Zürich"}`

func tcCall(id string) Message {
	return Message{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: id, Name: "get_weather", Arguments: tcArgs}}}
}

func tcConversation() []Message {
	return []Message{
		{Role: RoleUser, Content: "Weather in Zürich?"},
		tcCall("call_1"),
		{Role: RoleTool, Content: "18°C", ToolCallID: "call_1", Name: "get_weather"},
		{Role: RoleAssistant, Content: "It is 18°C."},
	}
}

// jsonString is s as a JSON string literal (a CSV cell or a record field
// holding JSON text).
func jsonString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// csvCell is s quoted as a CSV field.
func csvCell(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// TestToolCallingLayouts: each layout of tool calling data read into the
// same examples: OpenAI's (arguments a string, content null), TRL's and
// transformers' (arguments an object, content absent, tools a string or a
// list), the flattened call, a JSON array, CSV cells holding JSON, OpenAI's
// legacy functions, LLaMA-Factory's ShareGPT, Llama 3.1's ipython role,
// parallel calls, preference (DPO) and unpaired (KTO) records whose
// completion is a call, and prompt/completion pairs. Arguments and tools
// keep the order of their keys, and Unicode.
func TestToolCallingLayouts(t *testing.T) {
	conv := tcConversation()
	parallel := []Message{
		{Role: RoleUser, Content: "Paris and Oslo?"},
		{Role: RoleAssistant, Content: "Checking.", ToolCalls: []ToolCall{
			{ID: "a", Name: "get_weather", Arguments: `{"city":"Paris"}`},
			{ID: "b", Name: "get_weather", Arguments: `{"city":"Oslo","days":[1,2.50]}`},
		}},
		{Role: RoleTool, Content: "18", ToolCallID: "b"},
		{Role: RoleTool, Content: "9", ToolCallID: "a"},
		{Role: RoleAssistant, Content: "Oslo is colder."},
	}
	legacy := []Message{
		{Role: RoleUser, Content: "Weather in Zürich?"},
		{Role: RoleAssistant, ToolCalls: []ToolCall{{Name: "get_weather", Arguments: tcArgs}}},
		{Role: RoleTool, Content: "18°C", Name: "get_weather"},
		{Role: RoleAssistant, Content: "It is 18°C."},
	}
	sharegpt := func(calls ...ToolCall) []Message {
		return []Message{
			{Role: RoleSystem, Content: "S"},
			{Role: RoleUser, Content: "Weather in Zürich?"},
			{Role: RoleAssistant, ToolCalls: calls},
			{Role: RoleTool, Content: "18°C"},
			{Role: RoleAssistant, Content: "It is 18°C."},
		}
	}
	call := ToolCall{Name: "get_weather", Arguments: tcArgs}
	kw := ToolCall{Name: "f", Arguments: `{"z":{"b":true,"a":null},"a":"<&>"}`}
	ipython := []Message{{Role: RoleUser, Content: "2**10?"}, {Role: RoleAssistant, ToolCalls: []ToolCall{{Name: "python", Arguments: `{"code":"print(2**10)"}`}}},
		{Role: RoleTool, Content: "1024"}, {Role: RoleAssistant, Content: "1024."}}
	context := func(msgs []Message) []Message {
		out := append([]Message(nil), msgs...)
		for i := range out {
			if out[i].Role == RoleAssistant {
				out[i].NoLoss, out[i].Context = true, true
			}
		}
		return out
	}
	for _, tc := range []struct {
		name, file, content string
		want                []Example
	}{
		{"openai jsonl", "t.jsonl",
			`{"messages":[{"role":"system","content":"S"},` + tcUser + `,` + tcCallOpenAI + `,` + tcResult + `,` + tcAnswer + `],"tools":` + tcToolsSpace + `}`,
			[]Example{{Messages: append([]Message{{Role: RoleSystem, Content: "S"}}, conv...), Tools: tcToolsList, Source: "t.jsonl:1"}}},
		{"transformers jsonl, tools a string", "t.jsonl",
			`{"messages":[` + tcUser + `,` + tcCallHF + `,` + tcResult + `,` + tcAnswer + `],"tools":` + jsonString(tcToolsSpace) + `}`,
			[]Example{{Messages: conv, Tools: tcToolsList, Source: "t.jsonl:1"}}},
		{"content empty, tools empty", "t.jsonl",
			`{"messages":[` + tcUser + `,` + strings.Replace(tcCallOpenAI, `"content":null`, `"content":""`, 1) + `,` + tcResult + `,` + tcAnswer + `],"tools":[]}` + "\n" +
				`{"messages":[` + tcUser + `,` + tcCallHF + `,` + tcResult + `,` + tcAnswer + `],"tools":"[]"}` + "\n" +
				`{"messages":[` + tcUser + `,` + tcCallHF + `,` + tcResult + `,` + tcAnswer + `],"tools":null}`,
			[]Example{{Messages: conv, Source: "t.jsonl:1"}, {Messages: conv, Source: "t.jsonl:2"}, {Messages: conv, Source: "t.jsonl:3"}}},
		{"one schema for every message, null where absent", "t.jsonl",
			`{"messages":[{"role":"user","content":"Weather in Zürich?","tool_calls":null,"function_call":null,"tool_call_id":null,"name":null},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":` + jsonString(tcArgs) + `}}],"function_call":null,"tool_call_id":null,"name":null},` +
				`{"role":"tool","content":"18°C","tool_calls":null,"function_call":null,"tool_call_id":"call_1","name":"get_weather"},` +
				`{"role":"assistant","content":"It is 18°C.","tool_calls":[],"function_call":null,"tool_call_id":null,"name":""}],"tools":null}`,
			[]Example{{Messages: conv, Source: "t.jsonl:1"}}},
		{"flattened calls, parallel", "t.jsonl",
			`{"messages":[{"role":"user","content":"Paris and Oslo?"},{"role":"assistant","content":"Checking.","tool_calls":[` +
				`{"id":"a","name":"get_weather","arguments":{"city":"Paris"}},{"id":"b","type":"function","name":"get_weather","arguments":"{\"city\":\"Oslo\",\"days\":[1, 2.50]}"}]},` +
				`{"role":"tool","tool_call_id":"b","content":"18"},{"role":"tool","tool_call_id":"a","content":"9"},{"role":"assistant","content":"Oslo is colder."}]}`,
			[]Example{{Messages: parallel, Source: "t.jsonl:1"}}},
		{"key order and escapes of nested arguments", "t.jsonl",
			`{"messages":[{"role":"user","content":"q"},{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{ "z" : {"b":true, "a":null}, "a":"\u003c&>"}}}]},{"role":"tool","content":"r"},{"role":"assistant","content":"a"}]}`,
			[]Example{{Messages: []Message{{Role: RoleUser, Content: "q"}, {Role: RoleAssistant, ToolCalls: []ToolCall{kw}}, {Role: RoleTool, Content: "r"}, {Role: RoleAssistant, Content: "a"}}, Source: "t.jsonl:1"}}},
		{"a call written in the answer's text (Phi-4-mini's), its result a tool message", "t.jsonl",
			`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"<|tool_call|>[{\"name\": \"f\"}]<|/tool_call|>"},{"role":"tool","content":"r"},{"role":"assistant","content":"a"}]}`,
			[]Example{{Messages: []Message{{Role: RoleUser, Content: "q"}, {Role: RoleAssistant, Content: `<|tool_call|>[{"name": "f"}]<|/tool_call|>`}, {Role: RoleTool, Content: "r"}, {Role: RoleAssistant, Content: "a"}}, Source: "t.jsonl:1"}}},
		{"participant names reach the template", "t.jsonl",
			`{"messages":[{"role":"user","name":"Ann","content":"q"},{"role":"assistant","name":"bot","content":"a"}]}`,
			[]Example{{Messages: []Message{{Role: RoleUser, Name: "Ann", Content: "q"}, {Role: RoleAssistant, Name: "bot", Content: "a"}}, Source: "t.jsonl:1"}}},
		{"json array", "t.json",
			"[\n  {\n    \"messages\": [\n      " + tcUser + ",\n      " + tcCallHF + ",\n      " + tcResult + ",\n      " + tcAnswer + "\n    ],\n    \"tools\": " + tcToolsSpace + "\n  }\n]\n",
			[]Example{{Messages: conv, Tools: tcToolsList, Source: "t.json:2"}}},
		{"csv cells holding JSON", "t.csv",
			"messages,tools\n" + csvCell(`[`+tcUser+`,`+tcCallOpenAI+`,`+tcResult+`,`+tcAnswer+`]`) + "," + csvCell(tcToolsSpace) + "\n" +
				csvCell(`[`+tcUser+`,`+tcCallHF+`,`+tcResult+`,`+tcAnswer+`]`) + ",\n",
			[]Example{{Messages: conv, Tools: tcToolsList, Source: "t.csv:2"}, {Messages: conv, Source: "t.csv:3"}}},
		{"openai legacy functions", "t.jsonl",
			`{"messages":[` + tcUser + `,{"role":"assistant","content":null,"function_call":{"name":"get_weather","arguments":"{\"unit\":\"celsius\",\"city\":\"Zürich\"}"}},` +
				`{"role":"function","name":"get_weather","content":"18°C"},` + tcAnswer + `],"functions":[{"name":"get_weather","parameters":{"type":"object","properties":{}}}]}`,
			[]Example{{Messages: legacy, Tools: `[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}]`, Source: "t.jsonl:1"}}},
		{"llama-factory sharegpt", "t.json",
			`[{"conversations":[{"from":"human","value":"Weather in Zürich?"},{"from":"function_call","value":"{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"celsius\", \"city\": \"Zürich\"}}"},` +
				`{"from":"observation","value":"18°C"},{"from":"gpt","value":"It is 18°C."}],"system":"S","tools":` + jsonString(tcToolsSpace) + `},` + "\n" +
				`{"conversations":[{"from":"human","value":"Weather in Zürich?"},{"from":"function_call","value":"[{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"celsius\", \"city\": \"Zürich\"}}, {\"name\": \"f\", \"arguments\": {\"z\": {\"b\": true, \"a\": null}, \"a\": \"<&>\"}}]"},` +
				`{"from":"observation","value":"18°C"},{"from":"gpt","value":"It is 18°C."}],"system":"S"}]`,
			[]Example{{Messages: sharegpt(call), Tools: tcToolsList, Source: "t.json:1"}, {Messages: sharegpt(call, kw), Source: "t.json:2"}}},
		{"llama-factory sharegpt, its bare function schemas wrapped as tools", "t.json",
			`[{"conversations":[{"from":"human","value":"Weather in Zürich?"},{"from":"function_call","value":"{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"celsius\", \"city\": \"Zürich\"}}"},` +
				`{"from":"observation","value":"18°C"},{"from":"gpt","value":"It is 18°C."}],"system":"S","tools":"[{\"name\": \"get_weather\", \"parameters\": {}}, {\"type\": \"function\", \"function\": {\"name\": \"f\"}}]"}]`,
			[]Example{{Messages: sharegpt(call), Tools: `[{"type":"function","function":{"name":"get_weather","parameters":{}}},{"type":"function","function":{"name":"f"}}]`, Source: "t.json:1"}}},
		{"llama 3.1 ipython", "t.jsonl",
			`{"messages":[{"role":"user","content":"2**10?"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"python","arguments":{"code":"print(2**10)"}}}]},{"role":"ipython","content":"1024"},{"role":"assistant","content":"1024."}]}`,
			[]Example{{Messages: ipython, Source: "t.jsonl:1"}}},
		{"alpaca with tools", "t.jsonl", `{"instruction":"Weather in Zürich?","output":"Call get_weather.","tools":` + tcToolsSpace + `}`,
			[]Example{{Messages: chat("user", "Weather in Zürich?", "assistant", "Call get_weather."), Tools: tcToolsList, Source: "t.jsonl:1"}}},
		{"conversational prompt/completion", "t.jsonl",
			`{"prompt":[` + tcUser + `,` + tcCallHF + `,` + tcResult + `],"completion":[` + tcAnswer + `],"tools":` + tcToolsList + `}` + "\n" +
				`{"prompt":[` + tcUser + `],"completion":[` + tcCallOpenAI + `]}`,
			[]Example{{Messages: append(context(conv[:3]), conv[3]), Tools: tcToolsList, Source: "t.jsonl:1"},
				{Messages: []Message{conv[0], tcCall("call_1")}, Source: "t.jsonl:2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, tc.file, tc.content, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			for i := range got {
				if !slicesEqualMessages(got[i].Messages, tc.want[i].Messages) {
					t.Errorf("example %d: Message.Equal disagrees with reflect.DeepEqual", i)
				}
			}
		})
	}
}

func slicesEqualMessages(a, b []Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// TestToolCallingPreference: preference (DPO) and unpaired (KTO) records
// whose completions are tool calls, with their tools; an implicit prompt
// found with Message.Equal, so that completions differing only in a call's
// arguments are told apart; and a CSV of JSON lists.
func TestToolCallingPreference(t *testing.T) {
	callParis := strings.Replace(tcCallHF, `"city":"Zürich"`, `"city":"Paris"`, 1)
	paris := Message{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"unit":"celsius","city":"Paris"}`}}}
	user := chat("user", "Weather in Zürich?")
	for _, tc := range []struct {
		name, file, content string
		want                Example
	}{
		{"dpo, a call chosen", "p.jsonl", `{"prompt":[` + tcUser + `],"chosen":[` + tcCallOpenAI + `],"rejected":[{"role":"assistant","content":"I cannot know."}],"tools":` + tcToolsSpace + `}`,
			Example{Messages: user, Chosen: &Reply{Messages: []Message{tcCall("call_1")}}, Rejected: &Reply{Messages: chat("assistant", "I cannot know.")}, Tools: tcToolsList, Source: "p.jsonl:1"}},
		{"dpo, implicit prompt, calls differing in their arguments", "p.jsonl", `{"chosen":[` + tcUser + `,` + tcCallHF + `],"rejected":[` + tcUser + `,` + callParis + `]}`,
			Example{Messages: user, Chosen: &Reply{Messages: []Message{tcCall("call_1")}}, Rejected: &Reply{Messages: []Message{paris}}, Source: "p.jsonl:1"}},
		{"dpo, after a tool result", "p.jsonl", `{"prompt":[` + tcUser + `,` + tcCallHF + `,` + tcResult + `],"chosen":[` + tcAnswer + `],"rejected":[{"role":"assistant","content":"It is 30°C."}]}`,
			Example{Messages: tcConversation()[:3], Chosen: &Reply{Messages: chat("assistant", "It is 18°C.")}, Rejected: &Reply{Messages: chat("assistant", "It is 30°C.")}, Source: "p.jsonl:1"}},
		{"dpo csv", "p.csv", "prompt,chosen,rejected,tools\n" + csvCell(`[`+tcUser+`]`) + "," + csvCell(`[`+tcCallOpenAI+`]`) + "," + csvCell(`[`+callParis+`]`) + "," + csvCell(tcToolsSpace) + "\n",
			Example{Messages: user, Chosen: &Reply{Messages: []Message{tcCall("call_1")}}, Rejected: &Reply{Messages: []Message{paris}}, Tools: tcToolsList, Source: "p.csv:2"}},
		{"kto, a call desirable", "u.jsonl", `{"prompt":[` + tcUser + `],"completion":[` + tcCallHF + `],"label":true,"tools":` + jsonString(tcToolsList) + `}`,
			Example{Messages: user, Chosen: &Reply{Messages: []Message{tcCall("call_1")}}, Tools: tcToolsList, Source: "u.jsonl:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, tc.file, tc.content, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			// The supervised conversation a preference record makes keeps
			// its tools.
			for _, r := range []*Reply{got[0].Chosen, got[0].Rejected} {
				if r != nil {
					if c := got[0].Completed(r); c.Tools != tc.want.Tools || c.Validate() != nil {
						t.Errorf("Completed: tools %q, %v", c.Tools, c.Validate())
					}
				}
			}
		})
	}
}

// TestToolCallingRefusals: tool calling records that cannot be read as
// written are refused with the file, the line and the message and call
// concerned.
func TestToolCallingRefusals(t *testing.T) {
	msgs := func(ms ...string) string { return `{"messages":[` + strings.Join(ms, ",") + `]}` }
	withCall := func(call string) string {
		return msgs(tcUser, `{"role":"assistant","content":null,"tool_calls":[`+call+`]}`, tcResult, tcAnswer)
	}
	for _, tc := range []struct {
		name, file, content string
		sentinel            error
		want                string
	}{
		{"arguments a string not an object", "t.jsonl", withCall(`{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"Zürich"}}`), ErrBadValue,
			`t.jsonl:1:1: messages[1], tool call 0: function.arguments: bad value: expected a JSON object (the call's arguments), got a string that is not JSON ("Zürich"`},
		{"arguments a string holding a list", "t.jsonl", withCall(`{"function":{"name":"get_weather","arguments":"[1, 2]"}}`), ErrBadValue,
			`t.jsonl:1:1: messages[1], tool call 0: function.arguments: bad value: expected a JSON object (the call's arguments), got a string holding a list`},
		{"arguments a number", "t.jsonl", withCall(`{"name":"get_weather","arguments":7}`), ErrBadValue,
			`messages[1], tool call 0: arguments: bad value: expected a JSON object (the call's arguments) or a string holding one, got a number`},
		{"arguments missing", "t.jsonl", withCall(`{"function":{"name":"get_weather"}}`), ErrBadValue,
			`messages[1], tool call 0: bad value: no function.arguments (give {} to call "get_weather" without any)`},
		{"arguments with a key twice", "t.jsonl", withCall(`{"function":{"name":"get_weather","arguments":"{\"city\":\"a\",\"city\":\"b\"}"}}`), ErrBadValue,
			`function.arguments: bad value: the string holding a JSON object (the call's arguments) has key "city" twice`},
		{"arguments with a lone surrogate", "t.jsonl", withCall(`{"function":{"name":"get_weather","arguments":"{\"city\":\"\\ud800\"}"}}`), ErrInvalidUTF8,
			`function.arguments: invalid UTF-8: the string holding a JSON object (the call's arguments) has a lone UTF-16 surrogate escape`},
		{"no function name", "t.jsonl", withCall(`{"id":"call_1","type":"function","function":{"arguments":"{}"}}`), ErrBadValue,
			`t.jsonl:1:1: messages[1], tool call 0: bad value: no function.name (the function called)`},
		{"another type", "t.jsonl", withCall(`{"id":"call_1","type":"code_interpreter","function":{"name":"get_weather","arguments":"{}"}}`), ErrBadValue,
			`messages[1], tool call 0: bad value: type "code_interpreter": only function calls are read`},
		{"name beside function", "t.jsonl", withCall(`{"name":"x","function":{"name":"get_weather","arguments":"{}"}}`), ErrBadValue,
			`messages[1], tool call 0: bad value: the call has "name" beside "function"`},
		{"tool_calls not a list", "t.jsonl", msgs(tcUser, `{"role":"assistant","content":"","tool_calls":{"id":"c"}}`), ErrBadValue,
			`messages[1]: bad value: field "tool_calls": expected a list of calls, got an object`},
		{"tool_calls and function_call", "t.jsonl", msgs(tcUser, `{"role":"assistant","content":"","tool_calls":[{"name":"f","arguments":{}}],"function_call":{"name":"f","arguments":"{}"}}`), ErrBadValue,
			`messages[1]: bad value: the message has both "tool_calls" and "function_call"`},
		{"null content without calls", "t.jsonl", msgs(tcUser, `{"role":"assistant","content":null,"tool_calls":[]}`), ErrBadValue,
			`messages[1]: "content" is null`},
		{"calls on a user message", "t.jsonl", msgs(`{"role":"user","content":"q","tool_calls":[{"name":"f","arguments":{}}]}`, tcAnswer), ErrBadValue,
			`t.jsonl:1:1: bad value: message 0 (user) has tool calls; only assistant messages make them`},
		{"tool_call_id on an assistant message", "t.jsonl", msgs(tcUser, `{"role":"assistant","content":"a","tool_call_id":"call_1"}`), ErrBadValue,
			`message 1 (assistant) has a tool_call_id; only tool messages (a function's result) have one`},
		{"a tool result first", "t.jsonl", msgs(tcResult, tcAnswer), ErrBadValue,
			`t.jsonl:1:1: bad value: message 0 is a tool result, and no assistant message comes before it`},
		{"a tool result after a user message", "t.jsonl", msgs(tcUser, tcCallHF, `{"role":"user","content":"well?"}`, tcResult, tcAnswer), ErrBadValue,
			`message 3 is a tool result, and no assistant message comes before it`},
		{"a tool result after an answer", "t.jsonl", msgs(tcUser, tcAnswer, tcResult), ErrBadValue,
			`message 2 answers tool call "call_1", and message 1 before it makes no tool_calls`},
		{"a tool result for another call", "t.jsonl", msgs(tcUser, tcCallHF, strings.Replace(tcResult, "call_1", "call_9", 1), tcAnswer), ErrBadValue,
			`message 2 answers tool call "call_9", which is none of the calls of message 1 (its call ids: "call_1")`},
		{"tools an object", "t.jsonl", `{"messages":[` + tcUser + `,` + tcAnswer + `],"tools":{"type":"function"}}`, ErrBadValue,
			`t.jsonl:1:1: bad value: field "tools": expected a list of tool schemas ([{"type": "function", "function": {"name": ..., "parameters": ...}}]) or a string holding one, got an object`},
		{"tools a string holding an object", "t.jsonl", `{"messages":[` + tcUser + `,` + tcAnswer + `],"tools":"{\"type\":\"function\"}"}`, ErrBadValue,
			`field "tools": expected a list of tool schemas ([{"type": "function", "function": {"name": ..., "parameters": ...}}]) or a string holding one, got a string holding an object`},
		{"tools a string not JSON", "t.jsonl", `{"messages":[` + tcUser + `,` + tcAnswer + `],"tools":"get_weather"}`, ErrBadValue,
			`field "tools": bad value: expected a list of tool schemas`},
		{"tools holding a string", "t.jsonl", `{"messages":[` + tcUser + `,` + tcAnswer + `],"tools":["get_weather"]}`, ErrBadValue,
			`bad value: tools[0]: expected an object (a tool's schema), got a string`},
		{"tools and functions", "t.jsonl", `{"messages":[` + tcUser + `,` + tcAnswer + `],"tools":` + tcToolsList + `,"functions":[{"name":"f"}]}`, ErrBadValue,
			`fields "tools" and "functions" both list the tools (give them once)`},
		{"tools beside a completion", "t.jsonl", `{"text":"It is 18°C.","tools":` + tcToolsList + `}`, ErrBadValue,
			`t.jsonl:1:1: bad value: field "tools" lists tools, which a completion has no place for`},
		{"tools beside a text preference", "t.jsonl", `{"prompt":"The sky is","chosen":" blue.","rejected":" green.","tools":` + tcToolsList + `}`, ErrBadValue,
			`t.jsonl:1:1: bad value: field "tools" lists tools, which a text prompt has no place for`},
		{"tools beside a text unpaired record", "t.jsonl", `{"prompt":"The sky is","completion":" blue.","label":true,"tools":` + jsonString(tcToolsList) + `}`, ErrBadValue,
			`field "tools" lists tools, which a text prompt has no place for`},
		{"a tool message in a completion", "t.jsonl", `{"prompt":[` + tcUser + `],"chosen":[` + tcCallHF + `,` + tcResult + `],"rejected":[` + tcAnswer + `]}`, ErrBadValue,
			`chosen[1] is a tool message; a completion holds the assistant's messages`},
		{"two function_call turns in a row", "t.jsonl", `{"conversations":[{"from":"human","value":"q"},{"from":"function_call","value":"{\"name\":\"f\",\"arguments\":{}}"},{"from":"function_call","value":"{\"name\":\"g\",\"arguments\":{}}"},{"from":"observation","value":"r"},{"from":"gpt","value":"a"}]}`, ErrBadValue,
			`conversations[2]: a function_call turn right after another: give calls made together as one turn whose value is a JSON list of them`},
		{"a function_call turn with tool_calls", "t.jsonl", `{"conversations":[{"from":"human","value":"q"},{"from":"function_call","value":"{\"name\":\"f\",\"arguments\":{}}","tool_calls":[{"name":"g","arguments":{}}]},{"from":"gpt","value":"a"}]}`, ErrBadValue,
			`conversations[1]: a function_call turn holds its calls in "value", and has "tool_calls" or "function_call" too`},
		{"a function_call turn not JSON", "t.jsonl", `{"conversations":[{"from":"human","value":"q"},{"from":"function_call","value":"get_weather(city='Paris')"},{"from":"gpt","value":"a"}]}`, ErrBadValue,
			`conversations[1]: bad value: expected the JSON of a call, {"name": ..., "arguments": {...}}, or a list of them, got a string that is not JSON`},
		{"a function_call turn without arguments", "t.jsonl", `{"conversations":[{"from":"human","value":"q"},{"from":"function_call","value":"[{\"name\":\"f\",\"arguments\":{}},{\"name\":\"g\"}]"},{"from":"gpt","value":"a"}]}`, ErrBadValue,
			`conversations[1], tool call 1: bad value: no arguments (give {} to call "g" without any)`},
		{"csv arguments with a key twice", "t.csv", "messages\n" + csvCell(`[`+tcUser+`,{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{"a":1,"a":2}}}]},`+tcAnswer+`]`) + "\n", ErrBadValue,
			`t.csv:2:1: bad value: field "messages": the JSON list of messages has key "a" twice in one object`},
		{"csv preference arguments with a key twice", "t.csv", "prompt,chosen,rejected\n" + csvCell(`[`+tcUser+`]`) + "," + csvCell(`[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{"a":1,"a":2}}}]}]`) + "," + csvCell(`[`+tcAnswer+`]`) + "\n", ErrBadValue,
			`t.csv:2:1: bad value: field "chosen": the JSON list of messages has key "a" twice in one object`},
		{"csv arguments not an object", "t.csv", "messages\n" + csvCell(`[`+tcUser+`,{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"null"}}]},`+tcAnswer+`]`) + "\n", ErrBadValue,
			`t.csv:2:1: messages[1], tool call 0: function.arguments: bad value: expected a JSON object (the call's arguments), got a string holding null`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, tc.file, tc.content, Options{})
			var pe *PosError
			if !errors.Is(err, tc.sentinel) || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %v saying %s", err, tc.sentinel, tc.want)
			}
		})
	}
}

// TestValidateToolCalls: Validate, which every reader's example passes,
// checks tool calls and results built by hand too.
func TestValidateToolCalls(t *testing.T) {
	conv := tcConversation
	with := func(f func([]Message)) Example { m := conv(); f(m); return Example{Messages: m} }
	for _, tc := range []struct {
		name     string
		ex       Example
		sentinel error
		want     string // "" for valid
	}{
		{"valid", Example{Messages: conv(), Tools: tcToolsList}, nil, ""},
		{"a call alone is an answer", Example{Messages: conv()[:2]}, nil, ""},
		{"ids absent", with(func(m []Message) { m[1].ToolCalls[0].ID = "" }), nil, ""},
		{"result without id", with(func(m []Message) { m[2].ToolCallID = "" }), nil, ""},
		{"an unknown role", with(func(m []Message) { m[2].Role = "wizard" }), ErrUnknownRole, `unknown role "wizard" in message 2 (want system, user, assistant or tool)`},
		{"no function name", with(func(m []Message) { m[1].ToolCalls[0].Name = " " }), ErrBadValue, "message 1, tool call 0 has no function name"},
		{"two calls with one id", with(func(m []Message) {
			m[1].ToolCalls = append(m[1].ToolCalls, m[1].ToolCalls[0])
		}), ErrBadValue, `message 1, tool calls 0 and 1 have the same id`},
		{"arguments not an object", with(func(m []Message) { m[1].ToolCalls[0].Arguments = `"x"` }), ErrBadValue, "message 1, tool call 0: the arguments are not a JSON object"},
		{"invalid UTF-8 in arguments", with(func(m []Message) { m[1].ToolCalls[0].Arguments = "{\"a\":\"\xff\"}" }), ErrInvalidUTF8, "message 1, tool call 0"},
		{"invalid UTF-8 in a call id", with(func(m []Message) { m[1].ToolCalls[0].ID = "\xff" }), ErrInvalidUTF8, "message 1, tool call 0"},
		{"invalid UTF-8 in a name", with(func(m []Message) { m[2].Name = "\xff" }), ErrInvalidUTF8, "name of message 2"},
		{"tools on text", Example{Text: "t", Tools: tcToolsList}, ErrBadValue, "the example lists tools and is text"},
		{"tools not a list", Example{Messages: conv(), Tools: `{"a":1}`}, ErrBadValue, "the tools are not a JSON list"},
		{"tools invalid UTF-8", Example{Messages: conv(), Tools: "[\"\xff\"]"}, ErrInvalidUTF8, "in the tools"},
		{"a preference with a call chosen", Example{Messages: conv()[:1], Chosen: &Reply{Messages: conv()[1:2]}, Rejected: &Reply{Messages: chat("assistant", "no")}, Tools: tcToolsList}, nil, ""},
		{"a preference whose completions differ only in a call", Example{Messages: conv()[:1], Chosen: &Reply{Messages: conv()[1:2]},
			Rejected: &Reply{Messages: []Message{{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}}}}}, nil, ""},
		{"a preference whose completions are the same call", Example{Messages: conv()[:1], Chosen: &Reply{Messages: conv()[1:2]}, Rejected: &Reply{Messages: conv()[1:2]}}, ErrBadValue, "the chosen and the rejected completions are the same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ex.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.sentinel) || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %v saying %q", err, tc.sentinel, tc.want)
			}
		})
	}
}
