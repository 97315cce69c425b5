package format

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadInput(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		content  string
		opts     Options
		sentinel error
		pos      string // "line:col" expected in the message, after the file name
		msg      string // expected part of the message
	}{
		{"malformed line", "d.jsonl", `{"text":"a"}` + "\n" + `{"text": "b",}` + "\n", Options{}, ErrMalformed, ":2:14:", "looking for beginning of object key"},
		{"not an object", "d.jsonl", `  ["text"]`, Options{}, ErrMalformed, ":1:3:", "expected a JSON object"},
		{"trailing garbage", "d.jsonl", `{"text":"a"} x`, Options{}, ErrMalformed, ":1:14:", "expected end of line"},
		{"unclosed string", "d.jsonl", `{"text":"a`, Options{}, ErrMalformed, ":1:", "unexpected end"},
		{"wrong type", "d.jsonl", `{"text":["a"]}`, Options{}, ErrBadValue, ":1:1:", `field "text": expected a string, got a list`},
		{"missing column later", "d.jsonl", `{"instruction":"i","output":"o"}` + "\n" + `{"instruction":"i"}`, Options{}, ErrMissingColumn, ":2:1:", `missing column "output": the file's shape, alpaca, was detected from its first record`},
		{"undetectable shape", "d.jsonl", `{"foo":"bar"}`, Options{}, ErrMissingColumn, ":1:1:", "cannot detect the shape from fields [foo]"},
		{"mapped column absent", "d.jsonl", `{"q":"a"}`, Options{Mapping: Mapping{Shape: ShapeInputOutput, Prompt: "q", Response: "a"}}, ErrMissingColumn, ":1:1:", `missing column "a": the file's shape, input_output, is set by data.shape or a column mapping`},
		{"empty output", "d.jsonl", `{"input":"q","output":"  "}`, Options{}, ErrBadValue, ":1:1:", `field "output" is empty`},
		{"invalid utf8", "d.jsonl", "{\"text\":\"ab\xffc\"}", Options{}, ErrInvalidUTF8, ":1:12:", "UTF-8"},
		{"unknown role", "d.jsonl", `{"messages":[{"role":"user","content":"a"},{"role":"wizard","content":"b"}]}`, Options{}, ErrUnknownRole, ":1:1:", `messages[1]: unknown role "wizard"`},
		{"no assistant turn", "d.jsonl", `{"messages":[{"role":"user","content":"a"}]}`, Options{}, ErrBadValue, ":1:1:", "no assistant message"},
		{"messages not a list", "d.jsonl", `{"messages":{"role":"user"}}`, Options{}, ErrBadValue, ":1:1:", "expected a non-empty list of messages, got an object"},
		{"every answer empty", "d.jsonl", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":" "},{"role":"user","content":"b"},{"role":"assistant","content":""}]}`, Options{}, ErrBadValue, ":1:1:", "every assistant answer is empty"},
		{"null content", "d.jsonl", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":null}]}`, Options{}, ErrBadValue, ":1:1:", `messages[1]: "content" is null`},
		{"missing content", "d.jsonl", `{"messages":[{"role":"user","content":"a"},{"role":"assistant"}]}`, Options{}, ErrMissingColumn, ":1:1:", `messages[1]: missing column "content"`},
		{"reasoning not a string", "d.jsonl", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}` + "\n" + `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b","reasoning_content":["r"]}]}`, Options{}, ErrBadValue, ":2:1:", `messages[1]: bad value: field "reasoning_content": expected a string (the assistant's reasoning), got a list`},
		{"reasoning alias not a string", "d.jsonl", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b","thinking":7}]}`, Options{}, ErrBadValue, ":1:1:", `field "thinking": expected a string`},
		{"reasoning aliases disagree", "d.jsonl", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b","reasoning_content":"r","reasoning":"s"}]}`, Options{}, ErrBadValue, ":1:1:", `fields "reasoning_content" and "reasoning" both hold reasoning and differ`},
		{"reasoning on a user message", "d.json", "[\n{\"messages\":[{\"role\":\"user\",\"content\":\"a\",\"reasoning_content\":\"r\"},{\"role\":\"assistant\",\"content\":\"b\"}]}]", Options{}, ErrBadValue, ":2:1:", "message 0 (user) has reasoning content; only assistant messages can have it"},
		{"reasoning twice", "d.jsonl", `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"<think>\nr\n</think>\n\nb","reasoning_content":"r"}]}`, Options{}, ErrBadValue, ":1:1:", "message 1 has reasoning content and a <think> block in its content too"},
		{"csv reasoning not a string", "d.csv", "messages\n\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"a\"\"},{\"\"role\"\":\"\"assistant\"\",\"\"content\"\":\"\"b\"\",\"\"reasoning\"\":{}}]\"\n", Options{}, ErrBadValue, ":2:", `field "reasoning": expected a string`},
		{"duplicate key", "d.jsonl", `{"input":"q","output":"a","output":"b"}`, Options{}, ErrMalformed, ":1:27:", `key "output" appears twice`},
		{"duplicate nested key", "d.jsonl", `{"messages":[{"role":"user","content":"a","content":"b"},{"role":"assistant","content":"c"}]}`, Options{}, ErrMalformed, ":1:43:", `key "content" appears twice`},
		{"json array duplicate key", "d.json", "[\n {\"text\":\"a\", \"text\":\"b\"}\n]", Options{}, ErrMalformed, ":2:", `key "text" appears twice`},
		{"empty file", "d.jsonl", "\n\n", Options{}, ErrEmptyDataset, "", "no examples"},
		{"all skipped", "d.jsonl", "{\n", Options{Skip: true}, ErrEmptyDataset, "", "1 bad records skipped"},
		{"json array syntax", "d.json", "[\n {\"text\":\"a\"},\n {\"text\" \"b\"}\n]", Options{}, ErrMalformed, ":3:10:", "after object key"},
		{"json array element not object", "d.json", "[\n {\"text\":\"a\"},\n 7\n]", Options{}, ErrMalformed, ":3:2:", "expected a JSON object as array element"},
		// A top-level object is one record, or holds a list of them (TestWrappedJSON).
		{"json top level string", "d.json", "\n  \"text\"", Options{}, ErrMalformed, ":2:3:", "expected a JSON array"},
		{"json array unclosed", "d.json", "[{\"text\":\"a\"},\n", Options{}, ErrMalformed, ":2:", "unexpected end of file"},
		{"json array invalid utf8", "d.json", "[{\"text\":\"a\"},\n {\"text\":\"\xc3\"}]", Options{}, ErrInvalidUTF8, ":2:11:", "UTF-8"},
		{"json array unknown role", "d.json", "[{\"conversations\":[{\"from\":\"alien\",\"value\":\"a\"}]}]", Options{}, ErrUnknownRole, ":1:2:", `"alien"`},
		{"csv field count", "d.csv", "input,output\na,b\nc\n", Options{}, ErrMalformed, ":3:", "expected 2 fields"},
		{"csv bad quote", "d.csv", "input,output\n\"a\"x,b\n", Options{}, ErrMalformed, ":2:3:", "quote"},
		{"csv unclosed quote", "d.csv", "input,output\na,b\nc,\"d\ne,f\ng,h\n", Options{}, ErrMalformed, ":3:", "never closed (the reader went on to line 5)"},
		{"csv invalid utf8", "d.csv", "input,output\na,b\xff\n", Options{}, ErrInvalidUTF8, ":2:4:", `column "output"`},
		{"csv duplicate header", "d.csv", "input,input\n", Options{}, ErrMalformed, ":1:", "unique non-empty column name"},
		{"text invalid utf8", "d.txt", "ok\nbad\xfe\n", Options{}, ErrInvalidUTF8, ":2:4:", "UTF-8"},
		{"empty csv", "d.csv", "", Options{}, ErrEmptyDataset, "", "no examples"},
		{"empty json array", "d.json", "[]", Options{}, ErrEmptyDataset, "", "no examples"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.file, tc.content)
			_, _, err := ReadAll(p, tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("error %q is not %v", err, tc.sentinel)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, p) {
				t.Errorf("error %q does not start with the file name", msg)
			}
			if tc.pos != "" && !strings.HasPrefix(msg, p+tc.pos) {
				t.Errorf("error %q: want position %s", msg, filepath.Base(p)+tc.pos)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q does not say %q", msg, tc.msg)
			}
		})
	}
}

func TestSkipCountsBadRows(t *testing.T) {
	content := strings.Join([]string{
		`{"input":"a","output":"1"}`,
		`{"input":"b","output":}`,
		`{"input":"c"}`,
		"{\"input\":\"\xff\",\"output\":\"3\"}",
		`{"input":"d","output":"4"}`,
	}, "\n")
	p := writeFile(t, "s.jsonl", content)
	exs, rep, err := ReadAll(p, Options{Skip: true, MaxSkipMessages: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 || exs[1].Messages[0].Content != "d" || exs[1].Source != p+":5" {
		t.Errorf("examples %+v", exs)
	}
	if rep.Records != 5 || rep.Examples != 2 || rep.Skipped != 3 || len(rep.SkipErrors) != 2 {
		t.Errorf("report %+v, want 5 records, 2 examples, 3 skipped, 2 messages", rep)
	}
	if !strings.Contains(rep.SkipErrors[0], ":2:") || !strings.Contains(rep.SkipErrors[1], ":3:") {
		t.Errorf("skip messages %q", rep.SkipErrors)
	}
}

func TestSkipDoesNotHideFatalJSONArrayError(t *testing.T) {
	p := writeFile(t, "a.json", `[{"text":"a"}, {"text" 1}, {"text":"c"}]`)
	r, err := Open(p, Options{Skip: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if ex, err := r.Next(); err != nil || ex.Text != "a" {
		t.Fatalf("first example %+v, %v", ex, err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("second Next error %v, want ErrMalformed", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after a fatal error Next = %v, want io.EOF", err)
	}
}

func TestCSVSkipResumes(t *testing.T) {
	p := writeFile(t, "a.csv", "text\nfine\n\"bro\"ken\nalso fine\n")
	exs, rep, err := ReadAll(p, Options{Skip: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 || exs[1].Text != "also fine" || rep.Skipped != 1 {
		t.Errorf("examples %+v report %+v", exs, rep)
	}
}
