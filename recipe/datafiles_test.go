package recipe

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// userRecords are ten examples per shape, as users bring them.
var userRecords = map[string]func(i int) string{
	"chat": func(i int) string {
		return `{"messages": [{"role": "user", "content": "What is ` + itoa(i) + ` plus one?"}, {"role": "assistant", "content": "` + itoa(i+1) + `"}]}`
	},
	"alpaca": func(i int) string {
		return `{"instruction": "Add one.", "input": "` + itoa(i) + `", "output": "` + itoa(i+1) + `"}`
	},
	"sharegpt": func(i int) string {
		return `{"conversations": [{"from": "human", "value": "Add one to ` + itoa(i) + `"}, {"from": "gpt", "value": "` + itoa(i+1) + `"}]}`
	},
	"input_output": func(i int) string {
		return `{"prompt": "Add one to ` + itoa(i) + `", "completion": "` + itoa(i+1) + `"}`
	},
	"completion": func(i int) string { return `{"text": "` + itoa(i) + ` plus one is ` + itoa(i+1) + `."}` },
}

func itoa(i int) string { return strconv.Itoa(i) }

func writeUserFile(t *testing.T, dir, name, shape string, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		b.WriteString(userRecords[shape](i) + "\n")
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileOpts(files ...string) Options {
	o := dataOptions()
	o.DataRoot, o.DataFiles, o.Pack = "", files, false
	return o
}

// TestDataFileShapes: one file of each shape is read as one subject named
// after the file, its shape detected and said, a tenth held out.
func TestDataFileShapes(t *testing.T) {
	dir := t.TempDir()
	for shape := range userRecords {
		p := writeUserFile(t, dir, "my-"+shape+".jsonl", shape, 20)
		ds, log := loadTestData(t, fileOpts(p))
		if len(ds.subjects) != 1 || ds.subjects[0] != "my-"+shape {
			t.Errorf("%s: subjects %v, want [my-%s]", shape, ds.subjects, shape)
		}
		if len(ds.train) != 18 || len(ds.val) != 2 {
			t.Errorf("%s: %d training and %d validation rows, want 18 and 2", shape, len(ds.train), len(ds.val))
		}
		if want := "shape " + shape + " (detected), 20 examples"; !strings.Contains(log, want) {
			t.Errorf("%s: log does not say %q:\n%s", shape, want, log)
		}
		if !strings.Contains(log, "2 of 20 training examples held out") {
			t.Errorf("%s: the hold-out is not said:\n%s", shape, log)
		}
	}
}

// TestDataFolderAndGlob: a folder of files and a glob form one subject
// "data"; a text file and a CSV are read alongside JSONL.
func TestDataFolderAndGlob(t *testing.T) {
	dir := t.TempDir()
	writeUserFile(t, dir, "a.jsonl", "chat", 10)
	writeUserFile(t, dir, "b.jsonl", "alpaca", 10)
	if err := os.WriteFile(filepath.Join(dir, "c.txt"), []byte("one line of text\nanother line of text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d.csv"), []byte("question,answer\nTwo plus two?,4\nThree plus three?,6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not data"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, log := loadTestData(t, fileOpts(dir))
	if len(ds.subjects) != 1 || ds.subjects[0] != "data" || len(ds.train)+len(ds.val) != 24 {
		t.Fatalf("folder: subjects %v with %d+%d rows, want [data] with 24:\n%s", ds.subjects, len(ds.train), len(ds.val), log)
	}
	for _, want := range []string{"c.txt: text, shape completion", "d.csv: csv, shape input_output"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not say %q:\n%s", want, log)
		}
	}
	ds, _ = loadTestData(t, fileOpts(filepath.Join(dir, "*.jsonl")))
	if len(ds.train)+len(ds.val) != 20 {
		t.Fatalf("glob: %d rows, want 20", len(ds.train)+len(ds.val))
	}
	tp, _ := LoadText(tinyBase, 0)
	if _, err := loadData(context.Background(), fileOpts(filepath.Join(dir, "*.parquet")), tp, 0); err == nil || !strings.Contains(err.Error(), "matches no file") {
		t.Fatalf("a glob matching nothing: %v", err)
	}
}

// TestDataFilesSubjectRoot: a folder of subject folders given as
// data.files stays the multi-subject way, with their validation files.
func TestDataFilesSubjectRoot(t *testing.T) {
	ds, log := loadTestData(t, fileOpts(subjects))
	if strings.Join(ds.subjects, ",") != "chemistry,geography,us-history" || strings.Contains(log, "held out") {
		t.Fatalf("subjects %v (log %s), want the three bundled ones with their own val files", ds.subjects, log)
	}
	one, _ := loadTestData(t, fileOpts(filepath.Join(subjects, "geography")))
	if len(one.subjects) != 1 || one.subjects[0] != "geography" {
		t.Fatalf("one subject folder: subjects %v", one.subjects)
	}
}

// TestDataFileOverridesAndErrors: data.shape overrides detection, and bad
// records are errors naming the file and line.
func TestDataFileOverridesAndErrors(t *testing.T) {
	dir := t.TempDir()
	p := writeUserFile(t, dir, "qa.jsonl", "alpaca", 10)
	o := fileOpts(p)
	o.Shape = "input_output" // alpaca records also have input and output
	_, log := loadTestData(t, o)
	if !strings.Contains(log, "shape input_output (data.shape)") {
		t.Errorf("data.shape not applied:\n%s", log)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	body := userRecords["chat"](1) + "\n" + userRecords["chat"](2) + "\n{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n"
	if err := os.WriteFile(bad, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	tp, _ := LoadText(tinyBase, 0)
	if _, err := loadData(context.Background(), fileOpts(bad), tp, 0); err == nil || !strings.Contains(err.Error(), "bad.jsonl:3") {
		t.Fatalf("bad record: error %v, want one naming bad.jsonl:3", err)
	}
	o = fileOpts(p)
	o.Format = "xml"
	if _, err := loadData(context.Background(), o, tp, 0); err == nil || !strings.Contains(err.Error(), "data.format") {
		t.Fatalf("format xml: %v", err)
	}
}

// TestRunOnOwnFile: `ftune train --data my.jsonl` end to end: a short run
// on one file validates on the held-out share.
func TestRunOnOwnFile(t *testing.T) {
	p := writeUserFile(t, t.TempDir(), "my.jsonl", "chat", 20)
	o := fileOpts(p)
	o.OutDir, o.Steps, o.BatchSize, o.WarmupSteps, o.EvalEvery, o.Samples, o.CheckpointEvery = t.TempDir(), 2, 2, 0, 0, 0, 0
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 2 || res.After.Val["val/loss"] == 0 {
		t.Fatalf("%d steps, validation %v", res.Steps, res.After.Val)
	}
}

// TestRunWithoutEvalData: without validation or test data the run says so
// once and prints no empty before/after sections.
func TestRunWithoutEvalData(t *testing.T) {
	p := writeUserFile(t, t.TempDir(), "my.jsonl", "chat", 20)
	o := fileOpts(p)
	o.ValSplit = 0
	o.OutDir, o.Steps, o.BatchSize, o.WarmupSteps, o.EvalEvery, o.Samples, o.CheckpointEvery = t.TempDir(), 2, 2, 0, 0, 1, 0
	var log strings.Builder
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if strings.Count(out, "no validation or test data") != 1 || strings.Contains(out, "== before") || strings.Contains(out, "== after") || strings.Contains(out, "== sample") {
		t.Fatalf("log:\n%s", out)
	}
	if res.Steps != 2 || len(res.Adapters) != 1 {
		t.Fatalf("%d steps, adapters %v", res.Steps, res.Adapters)
	}
}

// TestFileOptionsTakeEveryFormat: every data.format the config accepts
// reaches the reader (tsv was accepted by config and refused here).
func TestFileOptionsTakeEveryFormat(t *testing.T) {
	for _, f := range []string{"auto", "jsonl", "json", "csv", "tsv", "parquet", "text"} {
		fo, err := fileOptions(Options{Format: f})
		if err != nil {
			t.Errorf("data.format %s: %v", f, err)
		} else if f != "auto" && string(fo.Kind) != f {
			t.Errorf("data.format %s read as kind %q", f, fo.Kind)
		}
	}
}

// TestDataFolderOfCompressedFiles: a folder holding only files ftune does
// not read (compressed ones here) is refused naming them and saying to
// decompress, not only "holds no data file".
func TestDataFolderOfCompressedFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "law.jsonl.gz"), []byte("\x1f\x8b"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := dataFilesIn(dir, true)
	if err == nil || !strings.Contains(err.Error(), "law.jsonl.gz") || !strings.Contains(err.Error(), "decompress them first") {
		t.Errorf("a folder of .gz files: %v, want the file named and told to decompress", err)
	}
}
