package format

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestSystemField: a top-level system field is the conversation's system
// message in every shape that has one, whichever record holds it: the
// ShareGPT layout LLaMA-Factory writes, a chat CSV with a system column,
// alpaca files whose first record has none, and a conversation prompt of
// preference records.
func TestSystemField(t *testing.T) {
	for _, tc := range []struct {
		name, file, content string
		opts                Options
		want                []Example
	}{
		{"sharegpt", "s.jsonl", `{"system":"Always answer in French.","conversations":[{"from":"human","value":"Capital of Peru?"},{"from":"gpt","value":"Lima"}]}`, Options{},
			[]Example{{Messages: chat("system", "Always answer in French.", "user", "Capital of Peru?", "assistant", "Lima"), Source: "s.jsonl:1"}}},
		{"chat csv", "c.csv", "system,messages\nBe brief.,\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"Q\"\"},{\"\"role\"\":\"\"assistant\"\",\"\"content\"\":\"\"A\"\"}]\"\n", Options{},
			[]Example{{Messages: chat("system", "Be brief.", "user", "Q", "assistant", "A"), Source: "c.csv:2"}}},
		{"chat with a mapping", "m.jsonl", `{"system":"S","dialog":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}]}`, Options{Mapping: Mapping{Shape: ShapeChat, Messages: "dialog"}},
			[]Example{{Messages: chat("system", "S", "user", "Q", "assistant", "A"), Source: "m.jsonl:1"}}},
		{"alpaca, system in a later record only", "a.jsonl", `{"instruction":"I1","output":"O1"}` + "\n" + `{"instruction":"I2","output":"O2","system":"S2"}`, Options{},
			[]Example{{Messages: chat("user", "I1", "assistant", "O1"), Source: "a.jsonl:1"}, {Messages: chat("system", "S2", "user", "I2", "assistant", "O2"), Source: "a.jsonl:2"}}},
		{"preference conversation", "p.jsonl", `{"system":"S","prompt":[{"role":"user","content":"Q"}],"chosen":[{"role":"assistant","content":"yes"}],"rejected":[{"role":"assistant","content":"no"}]}`, Options{},
			[]Example{{Messages: chat("system", "S", "user", "Q"), Chosen: &Reply{Messages: chat("assistant", "yes")}, Rejected: &Reply{Messages: chat("assistant", "no")}, Source: "p.jsonl:1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, tc.file, tc.content, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestRecordRefusals: records the reader cannot take as they are are
// refused with their line, never read with a part of them dropped or
// replaced.
func TestRecordRefusals(t *testing.T) {
	user := `[{"role":"user","content":"Capital of Peru?"}]`
	for _, tc := range []struct {
		name, file, content string
		sentinel            error
		pos, msg            string
	}{
		{"a system field and a system message", "s.jsonl", `{"system":"A","conversations":[{"from":"system","value":"B"},{"from":"human","value":"Q"},{"from":"gpt","value":"A"}]}`,
			ErrBadValue, ":1:1:", `field "system" holds a system prompt and "conversations" has a system message too (message 0)`},
		{"an instruction beside input/output pairs", "io.jsonl", `{"input":"Q","output":"A"}` + "\n" + `{"instruction":"Translate.","input":"Q","output":"A"}`,
			ErrBadValue, ":2:1:", `fields ["instruction"] would be ignored: this record is shape alpaca, the file's shape is input_output`},
		{"text beside pairs of a completion file", "t.jsonl", `{"text":"T"}` + "\n" + `{"text":"T","messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}]}`,
			ErrBadValue, ":2:1:", `fields ["messages"] would be ignored`},
		{"a system field beside a text prompt", "p.jsonl", `{"system":"S","prompt":"Q:","chosen":" yes","rejected":" no"}`,
			ErrBadValue, ":1:1:", "a text prompt has no place for"},
		{"a text prompt beside assistant messages", "p.jsonl", `{"prompt":"Capital of Peru?","chosen":[{"role":"assistant","content":"Lima"}],"rejected":[{"role":"assistant","content":"Cusco"}]}`,
			ErrBadValue, ":1:1:", `field "prompt" is text and "chosen" and "rejected" are lists of messages whose first messages differ`},
		{"completions of two forms", "p.jsonl", `{"prompt":` + user + `,"chosen":[{"role":"assistant","content":"Lima"}],"rejected":"Cusco"}`,
			ErrBadValue, ":1:1:", `"chosen" is a list and "rejected" is a string`},
		{"lone high surrogate", "u.jsonl", `{"text":"ok"}` + "\n" + `{"text":"a\ud800b"}`, ErrInvalidUTF8, ":2:11:", "lone UTF-16 surrogate"},
		{"lone low surrogate", "u.jsonl", `{"text":"\udc00"}`, ErrInvalidUTF8, ":1:10:", "lone UTF-16 surrogate"},
		{"reversed pair", "u.jsonl", `{"text":"\udc00\ud800"}`, ErrInvalidUTF8, ":1:10:", "lone UTF-16 surrogate"},
		{"lone surrogate in a json array", "u.json", "[{\"text\":\"ok\"},\n {\"text\":\"\\uDBFF\"}]", ErrInvalidUTF8, ":2:11:", "lone UTF-16 surrogate"},
		{"lone surrogate in a csv messages cell", "u.csv", "messages\n\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"\\ud800\"\"},{\"\"role\"\":\"\"assistant\"\",\"\"content\"\":\"\"b\"\"}]\"\n", ErrInvalidUTF8, ":2:", "lone UTF-16 surrogate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.file, tc.content)
			_, _, err := ReadAll(p, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("error %q is not %v", err, tc.sentinel)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, p+tc.pos) || !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q\nwant %s%s ... %s", msg, p, tc.pos, tc.msg)
			}
		})
	}
}

// TestValidSurrogatePairs: escaped pairs (an emoji) and an escaped
// backslash before "ud800" are text, not lone surrogates.
func TestValidSurrogatePairs(t *testing.T) {
	got, err := readRecords(t, "u.jsonl", `{"text":"\ud83d\ude00 \\ud800 \u00e9"}`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "\U0001F600 \\ud800 é"; got[0].Text != want {
		t.Errorf("text %q, want %q", got[0].Text, want)
	}
}

// TestPreferenceMixedForms: a conversation prompt with text completions
// is the conversation answered by each (never a prompt invented from the
// completions' text), and CSV columns holding JSON lists of messages are
// read as messages, as a chat CSV's messages column is.
func TestPreferenceMixedForms(t *testing.T) {
	want := Example{Messages: chat("user", "Capital of Peru?"), Chosen: &Reply{Messages: chat("assistant", "The answer is Lima.")},
		Rejected: &Reply{Messages: chat("assistant", "The answer is Cusco.")}}
	for _, tc := range []struct{ name, file, content string }{
		{"message prompt, text completions", "p.jsonl", `{"prompt":[{"role":"user","content":"Capital of Peru?"}],"chosen":"The answer is Lima.","rejected":"The answer is Cusco."}`},
		{"csv of JSON lists", "p.csv", "prompt,chosen,rejected\n" +
			`"[{""role"":""user"",""content"":""Capital of Peru?""}]","[{""role"":""assistant"",""content"":""The answer is Lima.""}]","[{""role"":""assistant"",""content"":""The answer is Cusco.""}]"` + "\n"},
		{"csv of a JSON list prompt and text completions", "p.csv", "prompt,chosen,rejected\n" +
			`"[{""role"":""user"",""content"":""Capital of Peru?""}]",The answer is Lima.,The answer is Cusco.` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readRecords(t, tc.file, tc.content, Options{})
			if err != nil {
				t.Fatal(err)
			}
			w := want
			w.Source = tc.file + ":" + map[bool]string{true: "2", false: "1"}[strings.HasSuffix(tc.file, ".csv")]
			if len(got) != 1 || !reflect.DeepEqual(got[0], w) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
	// A text completion that is JSON but not a list of messages stays text.
	got, err := readRecords(t, "p.jsonl", `{"prompt":"List:","chosen":"[1, 2]","rejected":"[{\"a\": 1}]"}`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Chosen.Text != "[1, 2]" || got[0].Rejected.Text != `[{"a": 1}]` {
		t.Errorf("got %+v %+v", got[0].Chosen, got[0].Rejected)
	}
}
