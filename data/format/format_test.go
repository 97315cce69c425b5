package format

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func chat(pairs ...string) []Message {
	var m []Message
	for i := 0; i+1 < len(pairs); i += 2 {
		m = append(m, Message{Role: pairs[i], Content: pairs[i+1]})
	}
	return m
}

func TestShapes(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		content string
		opts    Options
		want    []Example
		shape   Shape
	}{
		{
			name: "alpaca jsonl", file: "a.jsonl", shape: ShapeAlpaca,
			content: `{"instruction":"Add","input":"2 and 3","output":"5"}` + "\n\n" +
				`{"instruction":"Say hi","input":"","output":"hi"}` + "\n",
			want: []Example{
				{Messages: chat("user", "Add\n\n2 and 3", "assistant", "5"), Source: "a.jsonl:1"},
				{Messages: chat("user", "Say hi", "assistant", "hi"), Source: "a.jsonl:3"},
			},
		},
		{
			// A number answer is written as text (TestTextFieldTypes).
			name: "alpaca output and system", file: "a.jsonl", shape: ShapeAlpaca,
			content: `{"instruction":"6*7?","output":"42","system":"Be terse."}`,
			want:    []Example{{Messages: chat("system", "Be terse.", "user", "6*7?", "assistant", "42"), Source: "a.jsonl:1"}},
		},
		{
			name: "chat jsonl with CRLF and BOM", file: "c.jsonl", shape: ShapeChat,
			content: "\ufeff" + `{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Q"},{"role":"assistant","content":"A"},{"role":"user","content":"Q2"},{"role":"assistant","content":"A2"}]}` + "\r\n",
			want:    []Example{{Messages: chat("system", "S", "user", "Q", "assistant", "A", "user", "Q2", "assistant", "A2"), Source: "c.jsonl:1"}},
		},
		{
			name: "sharegpt json array", file: "s.json", shape: ShapeShareGPT,
			content: "[\n  {\"conversations\": [{\"from\":\"system\",\"value\":\"S\"},{\"from\":\"human\",\"value\":\"Q\"},{\"from\":\"gpt\",\"value\":\"A\"}]},\n" +
				"  {\"conversations\": [{\"from\":\"human\",\"value\":\"x\"},{\"from\":\"gpt\",\"value\":\"y\"}]}\n]\n",
			want: []Example{
				{Messages: chat("system", "S", "user", "Q", "assistant", "A"), Source: "s.json:2"},
				{Messages: chat("user", "x", "assistant", "y"), Source: "s.json:3"},
			},
		},
		{
			name: "completion jsonl", file: "t.jsonl", shape: ShapeCompletion,
			content: `{"text":"hello world"}`,
			want:    []Example{{Text: "hello world", Source: "t.jsonl:1"}},
		},
		{
			name: "csv question answer with quotes", file: "q.csv", shape: ShapeInputOutput,
			content: "question,answer\n\"Capital of France, please?\",Paris\nWhat is 2+2?,\"4\"\n",
			want: []Example{
				{Messages: chat("user", "Capital of France, please?", "assistant", "Paris"), TextPair: true, Source: "q.csv:2"},
				{Messages: chat("user", "What is 2+2?", "assistant", "4"), TextPair: true, Source: "q.csv:3"},
			},
		},
		{
			name: "csv chat column as JSON", file: "m.csv", shape: ShapeChat,
			content: "messages\n\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"hi\"\"},{\"\"role\"\":\"\"assistant\"\",\"\"content\"\":\"\"yo\"\"}]\"\n",
			want:    []Example{{Messages: chat("user", "hi", "assistant", "yo"), Source: "m.csv:2"}},
		},
		{
			name: "chat jsonl with reasoning_content", file: "r.jsonl", shape: ShapeChat,
			content: `{"messages":[{"role":"user","content":"2+2?"},{"role":"assistant","content":"4","reasoning_content":"Two and two."},{"role":"user","content":"3+3?"},{"role":"assistant","content":"6","reasoning_content":null}]}`,
			want: []Example{{Messages: []Message{{Role: "user", Content: "2+2?"}, {Role: "assistant", Content: "4", ReasoningContent: "Two and two."},
				{Role: "user", Content: "3+3?"}, {Role: "assistant", Content: "6"}}, Source: "r.jsonl:1"}},
		},
		{
			name: "sharegpt json array with reasoning and thinking aliases", file: "r.json", shape: ShapeShareGPT,
			content: `[{"conversations":[{"from":"human","value":"Q"},{"from":"gpt","value":"A","reasoning":"R","thinking":"R"}]},` + "\n" +
				`{"conversations":[{"from":"human","value":"Q2"},{"from":"gpt","value":"A2","thinking":"T"}]}]`,
			want: []Example{
				{Messages: []Message{{Role: "user", Content: "Q"}, {Role: "assistant", Content: "A", ReasoningContent: "R"}}, Source: "r.json:1"},
				{Messages: []Message{{Role: "user", Content: "Q2"}, {Role: "assistant", Content: "A2", ReasoningContent: "T"}}, Source: "r.json:2"},
			},
		},
		{
			name: "csv chat column with reasoning_content", file: "r.csv", shape: ShapeChat,
			content: "messages\n\"[{\"\"role\"\":\"\"user\"\",\"\"content\"\":\"\"hi\"\"},{\"\"role\"\":\"\"assistant\"\",\"\"content\"\":\"\"yo\"\",\"\"reasoning_content\"\":\"\"greet back\"\"}]\"\n",
			want:    []Example{{Messages: []Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "yo", ReasoningContent: "greet back"}}, Source: "r.csv:2"}},
		},
		{
			name: "tsv input output", file: "p.tsv", shape: ShapeInputOutput,
			content: "input\toutput\nsay \"x\"\tx\n",
			want:    []Example{{Messages: chat("user", `say "x"`, "assistant", "x"), TextPair: true, Source: "p.tsv:2"}},
		},
		{
			name: "explicit column mapping", file: "x.jsonl", shape: ShapeInputOutput,
			content: `{"q":"Why?","a":"Because.","sys":"Be brief."}`,
			opts:    Options{Mapping: Mapping{Shape: ShapeInputOutput, Prompt: "q", Response: "a", System: "sys"}},
			want:    []Example{{Messages: chat("system", "Be brief.", "user", "Why?", "assistant", "Because."), TextPair: true, Source: "x.jsonl:1"}},
		},
		{
			name: "explicit chat mapping", file: "x.jsonl", shape: ShapeChat,
			content: `{"dialog":[{"speaker":"human","text":"a"},{"speaker":"bot","text":"b"}]}`,
			opts:    Options{Mapping: Mapping{Shape: ShapeChat, Messages: "dialog", Role: "speaker", Content: "text"}},
			want:    []Example{{Messages: chat("user", "a", "assistant", "b"), Source: "x.jsonl:1"}},
		},
		{
			name: "text lines", file: "t.txt", shape: ShapeCompletion,
			content: "first line\n\n  \nsecond line\r\n",
			want:    []Example{{Text: "first line", Source: "t.txt:1"}, {Text: "second line", Source: "t.txt:4"}},
		},
		{
			name: "text paragraphs", file: "t.txt", shape: ShapeCompletion, opts: Options{Text: TextParagraphs},
			content: "a\nb\n\n\nc\n",
			want:    []Example{{Text: "a\nb", Source: "t.txt:1"}, {Text: "c", Source: "t.txt:5"}},
		},
		{
			name: "text whole", file: "t.txt", shape: ShapeCompletion, opts: Options{Text: TextWhole},
			content: "a\n\nb\n",
			want:    []Example{{Text: "a\n\nb", Source: "t.txt:1"}},
		},
		{
			// A Markdown file is a document: its heading, list and code
			// mean something only together.
			name: "markdown whole by default", file: "guide.md", shape: ShapeCompletion,
			content: "# Install\n\nRun:\n\n```sh\nmake\n```\n",
			want:    []Example{{Text: "# Install\n\nRun:\n\n```sh\nmake\n```", Source: "guide.md:1"}},
		},
		{
			name: "markdown by line when asked", file: "guide.markdown", shape: ShapeCompletion, opts: Options{Text: TextLines},
			content: "# Install\n\nRun make.\n",
			want:    []Example{{Text: "# Install", Source: "guide.markdown:1"}, {Text: "Run make.", Source: "guide.markdown:3"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.file, tc.content)
			r, err := Open(p, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got []Example
			for {
				ex, err := r.Next()
				if err != nil {
					if err.Error() != "EOF" {
						t.Fatal(err)
					}
					break
				}
				ex.Source = filepath.Base(ex.Source)
				got = append(got, ex)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if r.Mapping().Shape != tc.shape {
				t.Errorf("shape %v, want %v", r.Mapping().Shape, tc.shape)
			}
			if rep := r.Report(); rep.Examples != len(tc.want) || rep.Skipped != 0 {
				t.Errorf("report %+v", rep)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	for path, want := range map[string]Kind{"a.jsonl": KindJSONL, "b.JSON": KindJSON, "c.csv": KindCSV,
		"d.tsv": KindTSV, "e.txt": KindText, "f.parquet": KindParquet} {
		if k, err := KindOf(path); err != nil || k != want {
			t.Errorf("KindOf(%q) = %v, %v; want %v", path, k, err, want)
		}
	}
	if _, err := KindOf("x.xlsx"); err == nil || !strings.Contains(err.Error(), ".xlsx") {
		t.Errorf("KindOf(x.xlsx) error %v, want unsupported extension", err)
	}
}

func TestParseShape(t *testing.T) {
	for _, s := range []Shape{ShapeAuto, ShapeAlpaca, ShapeChat, ShapeShareGPT, ShapeCompletion, ShapeInputOutput, ShapePreference} {
		got, err := ParseShape(s.String())
		if err != nil || got != s {
			t.Errorf("ParseShape(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseShape("openai"); err == nil {
		t.Error("ParseShape(openai) succeeded")
	}
}
