package recipe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/config"
)

// qaRecords are n records of a question, its context and its answer
// (SQuAD's and many Hub datasets' layout): no shape reads all three by
// these names.
func qaRecords(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"question": "%s question %d?", "context": "%s context %d.", "answer": "answer %d"}`+"\n", prefix, i, prefix, i, i)
	}
	return b.String()
}

// alpacaColumns maps qaRecords to alpaca's columns.
var alpacaColumns = map[string]string{"instruction": "question", "input": "context", "output": "answer"}

// TestDataColumnsMapEveryFile: data.columns maps the fields of the files
// given as data (every one of them) to the columns of data.shape, as a
// subject folder's subject.yaml does; without it the context field is
// refused as text no shape reads.
func TestDataColumnsMapEveryFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.jsonl": qaRecords("a", 6), "b.jsonl": qaRecords("b", 4)})
	files := []string{filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")}

	if _, _, err := loadLogged(t, fileOpts(files...), 0); err == nil || !strings.Contains(err.Error(), `field "context" holds text`) {
		t.Fatalf("without data.columns: %v, want the context refused", err)
	}

	o := fileOpts(files...)
	o.Shape, o.Columns = "alpaca", alpacaColumns
	ins, _, err := DataInputs(o)
	if err != nil || len(ins) != 1 {
		t.Fatalf("%+v, %v", ins, err)
	}
	exs, _, err := ReadDataFiles(context.Background(), ins[0], nil)
	if err != nil || len(exs) != 10 {
		t.Fatalf("%d examples, %v; want 10", len(exs), err)
	}
	for _, i := range []int{0, 9} { // a's first, b's last
		user := exs[i].Messages[0].Content
		if !strings.Contains(user, "question") || !strings.Contains(user, "context") || exs[i].Messages[1].Content == "" {
			t.Errorf("example %d: %+v: want the question and its context asked, the answer answered", i, exs[i].Messages)
		}
	}
	ds, log, err := loadLogged(t, o, 0)
	if err != nil || len(ds.train)+len(ds.val) != 10 {
		t.Fatalf("%v\n%s", err, log)
	}
	if !strings.Contains(log, "shape alpaca (data.shape)") {
		t.Errorf("the log does not say the shape set:\n%s", log)
	}
}

// TestDataColumnsHubSplits: one mapping covers a Hugging Face dataset
// folder's splits, the validation and test splits as the train split.
func TestDataColumnsHubSplits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "squadish")
	writeTree(t, dir, map[string]string{
		"README.md":                            hubCard,
		"data/train-00000-of-00001.jsonl":      qaRecords("train", 8),
		"data/validation-00000-of-00001.jsonl": qaRecords("valid", 3),
		"data/test-00000-of-00001.jsonl":       qaRecords("test", 2),
	})
	o := fileOpts(dir)
	o.Shape, o.Columns, o.EvalQuestions = "alpaca", alpacaColumns, 2
	ds, log, err := loadLogged(t, o, 0)
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if len(ds.train) != 8 || len(ds.val) != 3 || len(ds.questions) != 2 {
		t.Errorf("%d training rows, %d validation rows, %d questions; want 8, 3, 2\n%s", len(ds.train), len(ds.val), len(ds.questions), log)
	}
	if q := ds.questions[0].Question; !strings.Contains(q, "test context") {
		t.Errorf("question %q: want the test split's context mapped in", q)
	}
}

// TestDataColumnsRefused: a mapping that names a column its shape does not
// read, a key no shape has, a field left empty, or one that no data file
// would read (a subject folder maps its own in subject.yaml) is refused
// naming the key and the line it came from.
func TestDataColumnsRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "qa.jsonl")
	writeTree(t, dir, map[string]string{"qa.jsonl": qaRecords("q", 4)})
	for _, c := range []struct{ entry, want string }{
		{"messages: dialog", `run.yaml:6: data.columns: shape alpaca does not read "messages" (its columns: instruction, input, output, system, tools)`},
		{"question: q", `run.yaml:6: data.columns: unknown key "question"`},
		{"input: ''", `run.yaml:6: data.columns: "input" names no field`},
		// Two parts from one field would teach the model to echo its prompt.
		{"instruction: answer", `run.yaml:5: data.columns: "instruction" and "output" both name the field "answer"`},
	} {
		run := fmt.Sprintf("data:\n  files: [%s]\n  shape: alpaca\n  columns:\n    output: answer\n    %s\n", file, c.entry)
		cfg, err := config.Parse([]byte(run), "run.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, err := FromConfig(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("columns entry %s:\n%s\ngot %v, want %q", c.entry, run, err, c.want)
		}
	}

	// A subject folder given as data: its subject.yaml says its layout.
	folder := filepath.Join(t.TempDir(), "law")
	writeTree(t, folder, map[string]string{"train.jsonl": qaRecords("t", 4)})
	for _, root := range []string{folder, filepath.Dir(folder)} {
		o := fileOpts(root)
		o.Shape, o.Columns = "alpaca", alpacaColumns
		if _, _, err := DataInputs(o); err == nil || !strings.Contains(err.Error(), "subject.yaml") || !strings.Contains(err.Error(), "data.shape") {
			t.Errorf("%s: %v, want data.shape and data.columns refused pointing at subject.yaml", root, err)
		}
	}
	if err := os.WriteFile(filepath.Join(folder, "subject.yaml"), []byte("shape: alpaca\ncolumns: {instruction: question, input: context, output: answer}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, log, err := loadLogged(t, fileOpts(folder), 0); err != nil {
		t.Errorf("the folder mapped by its subject.yaml: %v\n%s", err, log)
	}
}
