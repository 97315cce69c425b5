package format

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestShareGPTPreference: LLaMA-Factory's preference data in ShareGPT
// form, a conversation and the chosen and rejected answers as one message
// each ({"from": "gpt", "value"}), is a conversational preference record:
// the conversation is the prompt (with the record's system and tools),
// each answer the assistant's message after it; so is its OpenAI-role
// form (messages, and answers as {"role", "content"}).
func TestShareGPTPreference(t *testing.T) {
	got, err := readTestdata(t, "llamafactory_pref_sharegpt.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Example{Messages: chat("user", "Capital of Peru?"), Chosen: answer("Lima"), Rejected: answer("No idea"),
		Source: filepath.Join("testdata", "migration", "llamafactory_pref_sharegpt.jsonl") + ":1"}
	if len(got) != 3 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	// The tools a ShareGPT record lists, as its supervised form reads them.
	tools := `"tools": "[{\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}]"`
	sft, err := readRecords(t, "s.jsonl", `{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], `+tools+`}`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, content string
		want          Example
	}{
		{"several turns, system and tools",
			`{"conversations": [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": "{\"name\": \"get_weather\", \"arguments\": {}}"}, {"from": "observation", "value": "18 C"}, {"from": "gpt", "value": "It is 18 C."}, {"from": "human", "value": "Warm?"}], ` +
				`"chosen": {"from": "gpt", "value": "Yes."}, "rejected": {"from": "gpt", "value": "No."}, "system": "Be brief.", ` + tools + `}`,
			Example{Messages: []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Weather?"},
				{Role: "assistant", ToolCalls: []ToolCall{{Name: "get_weather", Arguments: "{}"}}}, {Role: "tool", Content: "18 C"},
				{Role: "assistant", Content: "It is 18 C."}, {Role: "user", Content: "Warm?"}},
				Chosen: answer("Yes."), Rejected: answer("No."), Tools: sft[0].Tools, Source: "p.jsonl:1"}},
		{"OpenAI roles",
			`{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Peru?"}], "chosen": {"role": "assistant", "content": "Lima"}, "rejected": {"role": "assistant", "content": "Cusco"}}`,
			Example{Messages: chat("system", "Be brief.", "user", "Capital of Peru?"), Chosen: answer("Lima"), Rejected: answer("Cusco"), Source: "p.jsonl:1"}},
		{"answers as text after the conversation",
			`{"conversations": [{"from": "human", "value": "Capital of Peru?"}], "chosen": "Lima", "rejected": "Cusco"}`,
			Example{Messages: chat("user", "Capital of Peru?"), Chosen: answer("Lima"), Rejected: answer("Cusco"), Source: "p.jsonl:1"}},
		{"answers as lists after the conversation",
			`{"conversations": [{"from": "human", "value": "Capital of Peru?"}], "chosen": [{"from": "gpt", "value": "Lima"}], "rejected": [{"from": "gpt", "value": "Cusco"}]}`,
			Example{Messages: chat("user", "Capital of Peru?"), Chosen: answer("Lima"), Rejected: answer("Cusco"), Source: "p.jsonl:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, "p.jsonl", tc.content, Options{})
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}

	// LLaMA-Factory's KTO data in ShareGPT form lists its tools bare too.
	got, err = readRecords(t, "k.jsonl", `{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "kto_tag": true, `+tools+`}`, Options{})
	if err != nil || len(got) != 1 || got[0].Tools != sft[0].Tools {
		t.Errorf("KTO tools: got %+v, %v; want the tools %s", got, err, sft[0].Tools)
	}

	// CSV cells hold the conversation and the messages as JSON.
	got, err = readRecords(t, "p.csv", "conversations,chosen,rejected\n"+csvCell(`[{"from": "human", "value": "Q"}]`)+","+csvCell(`{"from": "gpt", "value": "A"}`)+","+csvCell(`{"from": "gpt", "value": "B"}`)+"\n", Options{})
	if want := (Example{Messages: chat("user", "Q"), Chosen: answer("A"), Rejected: answer("B"), Source: "p.csv:2"}); err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("CSV: got %+v, %v\nwant %+v", got, err, want)
	}

	// TRL's layouts beside a messages field read as before: the prompt,
	// or the whole conversations' shared beginning, is the prompt
	// (ultrafeedback_binarized's "messages" repeats the chosen one).
	conv := `[{"role": "user", "content": "Q"}, {"role": "assistant", "content": "%s"}]`
	got, err = readRecords(t, "u.jsonl", `{"prompt": "Q", "messages": `+strings.Replace(conv, "%s", "A", 1)+`, "chosen": `+strings.Replace(conv, "%s", "A", 1)+`, "rejected": `+strings.Replace(conv, "%s", "B", 1)+`}`, Options{})
	if want := (Example{Messages: chat("user", "Q"), Chosen: answer("A"), Rejected: answer("B"), Source: "u.jsonl:1"}); err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("ultrafeedback_binarized: got %+v, %v\nwant %+v", got, err, want)
	}

	for _, tc := range []struct {
		name, content, want string
	}{
		{"an answer from the user", `{"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "human", "value": "A"}, "rejected": {"from": "gpt", "value": "B"}}`, "chosen[0] is a user message"},
		{"an answer without text", `{"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": null}, "rejected": {"from": "gpt", "value": "B"}}`, `chosen[0]: "value" is null`},
		{"one answer a message, one text", `{"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "A"}, "rejected": "B"}`, `"chosen" is an object and "rejected" is a string`},
		{"the same answers", `{"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "A"}, "rejected": {"from": "gpt", "value": "A"}}`, "the same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "p.jsonl", tc.content, Options{})
			var pe *PosError
			if !errors.As(err, &pe) || pe.Line != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one at line 1 saying %q", err, tc.want)
			}
		})
	}
}
