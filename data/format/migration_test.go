package format

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readTestdata reads testdata/migration/name.
func readTestdata(t *testing.T, name string, opts Options) ([]Example, error) {
	t.Helper()
	got, _, err := ReadAll(filepath.Join("testdata", "migration", name), opts)
	return got, err
}

// answer is a completion of one assistant message.
func answer(s string) *Reply { return &Reply{Messages: chat("assistant", s)} }

// TestMigratedPreferencePrompts: preference records whose prompt is
// LLaMA-Factory's alpaca instruction (and input, joined as alpaca's) or
// Axolotl's chatml.intel question (with its system) are conversations:
// the prompt the user's message, the completions the assistant's whole
// answers, never the answers' shared beginning.
func TestMigratedPreferencePrompts(t *testing.T) {
	got, err := readTestdata(t, "llamafactory_pref_alpaca.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Example{Messages: chat("user", "What is the capital of Peru?"), Chosen: answer("The capital is Lima."), Rejected: answer("The capital is Cusco."), Source: filepath.Join("testdata", "migration", "llamafactory_pref_alpaca.jsonl") + ":1"}
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("LLaMA-Factory alpaca ranking data:\n got %+v\nwant %+v", got[0], want)
	}
	got, err = readTestdata(t, "axolotl_dpo_intel.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Example{Messages: chat("user", "Capital of Chile?"), Chosen: answer("Santiago"), Rejected: answer("Lima")}); len(got) != 2 || !reflect.DeepEqual(got[1].Messages, want.Messages) || !reflect.DeepEqual(got[1].Chosen, want.Chosen) || !reflect.DeepEqual(got[1].Rejected, want.Rejected) {
		t.Errorf("Axolotl chatml.intel: got %+v", got)
	}
	for _, tc := range []struct {
		name, content string
		want          Example
	}{
		{"instruction, input and system", `{"instruction":"Add","input":"2 and 3","chosen":"5","rejected":"6","system":"Be exact."}`,
			Example{Messages: chat("system", "Be exact.", "user", "Add\n\n2 and 3"), Chosen: answer("5"), Rejected: answer("6"), Source: "p.jsonl:1"}},
		{"question and system", `{"system":"Be brief.","question":"Capital of Peru?","chosen":"Lima","rejected":"Cusco"}`,
			Example{Messages: chat("system", "Be brief.", "user", "Capital of Peru?"), Chosen: answer("Lima"), Rejected: answer("Cusco"), Source: "p.jsonl:1"}},
		{"instruction with history", `{"instruction":"And 2+2?","input":"","history":[["1+1?","2"]],"chosen":"4","rejected":"5"}`,
			Example{Messages: chat("user", "1+1?", "assistant", "2", "user", "And 2+2?"), Chosen: answer("4"), Rejected: answer("5"), Source: "p.jsonl:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, "p.jsonl", tc.content, Options{})
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
	// A prompt column that cannot be the prompt is refused by name.
	for _, tc := range []struct {
		name, content string
		opts          Options
		want          string
	}{
		{"an instruction beside a prompt", `{"prompt":"P","instruction":"I","chosen":"A","rejected":"B"}`, Options{}, `"instruction"`},
		{"a question beside an instruction", `{"instruction":"I","question":"Q","chosen":"A","rejected":"B"}`, Options{}, `"question"`},
		{"a question that is an object", `{"question":{"text":"Q"},"chosen":"A","rejected":"B"}`, Options{}, `field "question": expected a string`},
		{"an instruction under shape preference set by hand", `{"instruction":"What is the capital of Peru?","chosen":"The capital is Lima.","rejected":"The capital is Cusco."}`, Options{Mapping: Mapping{Shape: ShapePreference}}, `"instruction"`},
		{"a question under shape unpaired_preference set by hand", `{"question":"Q","completion":"A","label":true}`, Options{Mapping: Mapping{Shape: ShapeUnpairedPreference}}, `"question"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "p.jsonl", tc.content, tc.opts)
			var pe *PosError
			if err == nil || !errors.As(err, &pe) || pe.Line != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a position error at line 1 naming %s", err, tc.want)
			}
		})
	}
}

// TestKTOTag: LLaMA-Factory's KTO data, alpaca or a conversation with a
// kto_tag, is unpaired feedback: the tag is the label (read as TRL's
// label is), the output or the conversation's last message the
// completion, the rest the prompt.
func TestKTOTag(t *testing.T) {
	got, err := readTestdata(t, "llamafactory_kto.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || !got[1].IsUnpaired() || got[1].Chosen != nil || !reflect.DeepEqual(got[1].Rejected, answer("No idea")) || !reflect.DeepEqual(got[0].Chosen, answer("Lima")) || !reflect.DeepEqual(got[0].Messages, chat("user", "Capital of Peru?")) {
		t.Fatalf("LLaMA-Factory KTO alpaca: %+v", got)
	}
	conv := `[{"from":"system","value":"S"},{"from":"human","value":"Q1"},{"from":"gpt","value":"A1"},{"from":"human","value":"Q2"},{"from":"gpt","value":"A2"}]`
	for _, tc := range []struct {
		name, content string
		want          Example
	}{
		{"sharegpt", `{"conversations":` + conv + `,"kto_tag":false}`,
			Example{Messages: chat("system", "S", "user", "Q1", "assistant", "A1", "user", "Q2"), Rejected: answer("A2"), Source: "k.jsonl:1"}},
		{"messages, system field", `{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}],"kto_tag":true,"system":"S"}`,
			Example{Messages: chat("system", "S", "user", "Q"), Chosen: answer("A"), Source: "k.jsonl:1"}},
		{"alpaca with input and history", `{"instruction":"I","input":"X","output":"O","history":[["q","a"]],"kto_tag":true}`,
			Example{Messages: chat("user", "q", "assistant", "a", "user", "I\n\nX"), Chosen: answer("O"), Source: "k.jsonl:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, "k.jsonl", tc.content, Options{})
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, content, want string }{
		{"a tag that is a word", `{"instruction":"I","output":"O","kto_tag":"yes"}`, `field "kto_tag" is the string "yes": write true or false`},
		{"a tag that is a string", `{"instruction":"I","output":"O","kto_tag":"True"}`, `field "kto_tag" is the string "True": write true or false, without quotes`},
		{"a conversation ending with the user", `{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"},{"role":"user","content":"R"}],"kto_tag":true}`, `"messages": the last message is the completion`},
		{"a tag beside plain text", `{"text":"T","kto_tag":true}`, `"kto_tag"`},
		{"a later record without its tag", `{"instruction":"I","output":"O","kto_tag":true}` + "\n" + `{"instruction":"I","output":"P"}`, `k.jsonl:2:1: missing column "kto_tag"`},
		{"a tag after an alpaca record", `{"instruction":"I","output":"O"}` + "\n" + `{"instruction":"I","output":"P","kto_tag":false}`, `k.jsonl:2:1: bad value: fields ["kto_tag"] would be ignored`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "k.jsonl", tc.content, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "k.jsonl:") {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestAlpacaHistory: LLaMA-Factory's alpaca history, [instruction,
// response] pairs before the record's own, are the conversation's earlier
// turns, learnt as a chat's earlier answers are; a malformed one is
// refused with the record's position.
func TestAlpacaHistory(t *testing.T) {
	got, err := readTestdata(t, "llamafactory_alpaca_history.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := chat("system", "You are a calculator.", "user", "What is 1+1?", "assistant", "2", "user", "What is 2+2?", "assistant", "4")
	if len(got) != 10 || !reflect.DeepEqual(got[3].Messages, want) {
		t.Fatalf("record 4: got %+v\nwant %+v", got[3].Messages, want)
	}
	for _, tc := range []struct {
		name, file, content string
		want                []Message
	}{
		{"two pairs", "h.jsonl", `{"instruction":"I","input":"X","output":"O","history":[["q1","a1"],["q2","a2"]]}`, chat("user", "q1", "assistant", "a1", "user", "q2", "assistant", "a2", "user", "I\n\nX", "assistant", "O")},
		{"empty", "h.jsonl", `{"instruction":"I","output":"O","history":[]}`, chat("user", "I", "assistant", "O")},
		{"null", "h.jsonl", `{"instruction":"I","output":"O","history":null}`, chat("user", "I", "assistant", "O")},
		{"a CSV cell of JSON", "h.csv", "instruction,output,history\nI,O,\"[[\"\"q\"\",\"\"a\"\"]]\"\n", chat("user", "q", "assistant", "a", "user", "I", "assistant", "O")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, tc.file, tc.content, Options{})
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Messages, tc.want) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, content, want string }{
		{"not a list", `{"instruction":"I","output":"O","history":"q then a"}`, `field "history": expected a list of [instruction, response] pairs, got a string`},
		{"a pair of one", `{"instruction":"I","output":"O","history":[["q"]]}`, `field "history": item 0: expected [instruction, response], got a list of 1`},
		{"a pair that is an object", `{"instruction":"I","output":"O","history":[{"q":"a"}]}`, `field "history": item 0: expected [instruction, response], got an object`},
		{"an empty answer", `{"instruction":"I","output":"O","history":[["q",""]]}`, `field "history[0][1]" is empty`},
		{"a list for an answer", `{"instruction":"I","output":"O","history":[["q",["a"]]]}`, `field "history[0][1]": expected a string, got a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readRecords(t, "h.jsonl", tc.content, Options{})
			if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), "h.jsonl:1:1") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestUnreadTextColumns: a field holding text that the detected shape
// does not read is refused with its file, line and name and the way out,
// rather than dropped: a question's context would be learnt without.
// Metadata, empty text, numbers written as text (CSV cells), a field that
// repeats what is read, and any field under a shape set by hand, are not.
func TestUnreadTextColumns(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"squad_like.jsonl", `squad_like.jsonl:1:1: bad value: field "context" holds text`},
		{"llamafactory_my_qa.json", `llamafactory_my_qa.json:2:2: bad value: fields "context" and "sys" hold text`},
	} {
		_, err := readTestdata(t, tc.file, Options{})
		if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "subject.yaml") {
			t.Errorf("%s: err = %v\nwant %s and the way out", tc.file, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, file, content string }{
		{"metadata", "m.jsonl", `{"id":"a1","prompt_id":"x","source":"wiki","category":"qa","url":"https://x.org","lang":"en","language":"English","title":"Peru","question":"Q","answer":"A"}`},
		{"a web corpus's metadata (FineWeb's)", "m.jsonl", `{"text":"Lima is the capital.","id":"<urn:uuid:1>","dump":"CC-MAIN-2013-20","url":"http://x.org/a","date":"2013-05-18T05:48:54Z","file_path":"s3://x/y.warc.gz","language":"en"}`},
		{"an empty context", "m.jsonl", `{"instruction":"I","context":"","input":"","output":"O"}` + "\n" + `{"instruction":"I","context":"  ","output":"O"}`},
		{"numbers and booleans as CSV text", "m.csv", "instruction,output,score,flag\nI,O,4.5,true\n"},
		{"a rendering of the record (tatsu-lab/alpaca's text)", "m.jsonl", `{"instruction":"Add","input":"2 and 3","output":"5","text":"### Instruction:\nAdd\n\n### Input:\n2 and 3\n\n### Response:\n5"}`},
		{"a copy of the first message (ultrachat_200k's prompt)", "m.jsonl", `{"prompt":"Capital of Peru?","prompt_id":"9f","messages":[{"role":"user","content":"Capital of Peru?"},{"role":"assistant","content":"Lima"}]}`},
		{"a list and an object", "m.jsonl", `{"instruction":"I","output":"O","tags":["a"],"meta":{"k":"v"}}`},
	} {
		if _, err := readRecords(t, tc.file, tc.content, Options{}); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := readRecords(t, "q.jsonl", `{"question":"Q","context":"C","answer":"A"}`, Options{Mapping: Mapping{Shape: ShapeInputOutput, Prompt: "question", Response: "answer"}}); err != nil {
		t.Errorf("a shape set by hand reads its columns only: %v", err)
	}
	// The way out: alpaca's columns read all three.
	got, err := readRecords(t, "q.jsonl", `{"question":"Q","context":"C","answer":"A"}`, Options{Mapping: Mapping{Shape: ShapeAlpaca, Instruction: "question", Input: "context", Output: "answer"}})
	if err != nil || !reflect.DeepEqual(got[0].Messages, chat("user", "Q\n\nC", "assistant", "A")) {
		t.Errorf("mapped as alpaca: %+v, %v", got, err)
	}
}

// TestMessageTrain reads Axolotl's per-message "train" as OpenAI's weight
// is read: false leaves an answer out of the loss, true learns it; a
// value that is not a boolean, one that contradicts the message's weight,
// and true on a message ftune does not learn are refused; false there is
// what ftune does anyway.
func TestMessageTrain(t *testing.T) {
	got, err := readTestdata(t, "axolotl_messages_train.jsonl", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var noLoss []bool
	for _, m := range got[0].Messages {
		noLoss = append(noLoss, m.NoLoss)
	}
	if want := []bool{false, true, false, false}; !reflect.DeepEqual(noLoss, want) {
		t.Errorf("NoLoss %v, want %v", noLoss, want)
	}
	for _, ok := range []string{
		`{"messages":[{"role":"system","content":"S","train":false},{"role":"user","content":"q","train":false},{"role":"assistant","content":"a","train":true,"weight":1}]}`,
		`{"conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"a","train":false,"weight":0},{"from":"human","value":"q"},{"from":"gpt","value":"b","train":null}]}`,
	} {
		if _, err := readRecords(t, "t.jsonl", ok, Options{}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, c := range []struct{ line, want string }{
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","train":"false"}]}`, `messages[1]: bad value: field "train" is the string "false": want true (learnt) or false (not learnt)`},
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","train":0}]}`, `field "train": 0: want true (learnt) or false (not learnt)`},
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","train":false,"weight":1}]}`, `messages[1]: bad value: "train" is false and "weight" is 1`},
		{`{"messages":[{"role":"user","content":"q","train":true},{"role":"assistant","content":"a"}]}`, `messages[0]: bad value: "train" is true on a user message`},
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","train":false}]}`, `every assistant answer has weight 0`},
	} {
		if _, err := readRecords(t, "t.jsonl", c.line, Options{}); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "t.jsonl:1") {
			t.Errorf("%s:\n got %v\nwant %q", c.line, err, c.want)
		}
	}
}
