package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/data/format"
)

// dataRoot copies one bundled subject (small) into a temporary root.
func dataRoot(t *testing.T) (root, train string) {
	t.Helper()
	root = t.TempDir()
	dir := filepath.Join(root, "tiny")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	train = filepath.Join(dir, "train.jsonl")
	rec := `{"messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris"}]}` + "\n"
	if err := os.WriteFile(train, []byte(strings.Repeat(rec, 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, train
}

// TestDataPrepareNoticesEditedData: a token cache used after its data file
// changed was reported "(up to date)" and trained on the old tokens; the
// cache is keyed on the data's content now.
func TestDataPrepareNoticesEditedData(t *testing.T) {
	root, train := dataRoot(t)
	out := t.TempDir()
	args := []string{"data", "prepare", "--data", root, "--out", out}
	for i, want := range []string{"(written)", "(up to date)"} {
		got, err := run(t, args...)
		if err != nil || !strings.Contains(got, want) {
			t.Fatalf("run %d: %v\n%s", i, err, got)
		}
	}
	edited := `{"messages":[{"role":"user","content":"Capital of Peru?"},{"role":"assistant","content":"Lima"}]}` + "\n"
	if err := os.WriteFile(train, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := run(t, args...)
	if err != nil || !strings.Contains(got, "(written)") || !strings.Contains(got, "1 documents") {
		t.Fatalf("after editing the data: %v\n%s", err, got)
	}
}

// TestDataPrepareRebuildsADamagedCache: a token cache changed in place
// (here one label of the mask, learnt turned ignored or back) was
// reported "(up to date)" and trained on; prepare now says which cache is
// damaged and how, and writes it again, as a fresh build writes it.
func TestDataPrepareRebuildsADamagedCache(t *testing.T) {
	root, _ := dataRoot(t)
	out := t.TempDir()
	args := []string{"data", "prepare", "--data", root, "--out", out}
	if got, err := run(t, args...); err != nil || !strings.Contains(got, "(written)") {
		t.Fatalf("%v\n%s", err, got)
	}
	path := filepath.Join(out, "tiny", "train.tokens")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)-5] ^= 1 // the last token's label, before the checksum
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := run(t, args...)
	line := path + ": token cache is corrupt: its contents fail their checksum"
	if err != nil || !strings.Contains(got, line) || !strings.Contains(got, "the file changed after ftune wrote it: rebuilding it\n") || !strings.Contains(got, "(written)") {
		t.Fatalf("a damaged cache: %v\n%s", err, got)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, good) {
		t.Error("the rebuilt cache is not the first build's")
	}
	if got, err := run(t, args...); err != nil || !strings.Contains(got, "(up to date)") || strings.Contains(got, "corrupt") {
		t.Errorf("the rebuilt cache: %v\n%s", err, got)
	}
}

// TestDataPrepareWarnsOverPositions: examples longer than the model's
// max_position_embeddings (1024 for tiny-base) were accepted without a
// word.
func TestDataPrepareWarnsOverPositions(t *testing.T) {
	root, train := dataRoot(t)
	long := `{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 1500) + `"},{"role":"assistant","content":"ok"}]}` + "\n"
	f, err := os.OpenFile(train, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(long)
	f.Close()
	got, err := run(t, "data", "prepare", "--data", root, "--out", t.TempDir(), "--seq-len", "4096")
	if err != nil || !strings.Contains(got, "--seq-len 4096 is more than the model's 1024 positions") ||
		!strings.Contains(got, "1 examples are longer than the model's 1024 positions") || !strings.Contains(got, "train.jsonl:4") {
		t.Fatalf("%v\n%s", err, got)
	}
}

func runCtx(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// TestDataCommandsHonourInterrupt: SIGINT and SIGTERM cancel the command's
// context (main); validate and prepare ignored it until all the work was
// done. They stop, say so, and prepare leaves no cache behind.
func TestDataCommandsHonourInterrupt(t *testing.T) {
	root, _ := dataRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as the first Ctrl-C does
	start := time.Now()
	out := t.TempDir()
	for _, args := range [][]string{{"data", "validate", "--data", root}, {"data", "prepare", "--data", root, "--out", out}} {
		got, err := runCtx(t, ctx, args...)
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("%v: %v\n%s", args, err, got)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(out, "tiny")); len(ents) != 0 {
		t.Errorf("prepare left %v", ents)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestCLIReadsParquet: the parquet reader left data/format for its own
// package; the CLI links it, so a .parquet file is read (here: found
// corrupt), not refused as unsupported.
func TestCLIReadsParquet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.parquet")
	if err := os.WriteFile(p, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := format.ReadAll(p, format.Options{})
	if !errors.Is(err, format.ErrMalformed) || errors.Is(err, format.ErrUnsupported) {
		t.Errorf("got %v", err)
	}
}

// writeData writes records, one a line, to dir/name and returns its path.
func writeData(t *testing.T, dir, name string, records ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(records, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const (
	recFrance = `{"messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris"}]}`
	recPeru   = `{"messages":[{"role":"user","content":"Capital of Peru?"},{"role":"assistant","content":"Lima"}]}`
	recBroken = `{"messages":[{"role":"user","content":"Capital of Chile?"}`
)

// tableRow is the report line whose last field is file, split in fields.
func tableRow(out, file string) []string {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == file {
			return f
		}
	}
	return nil
}

// TestDataValidateOwnFile: train --data my.jsonl reads the user's own
// file, but data validate took subject folders only, so a file could not
// be checked before a run. It reports the file's examples and tokens, and
// the record train would stop at, by file and line.
func TestDataValidateOwnFile(t *testing.T) {
	dir := t.TempDir()
	good := writeData(t, dir, "good.jsonl", recFrance, recPeru, recPeru)
	got, err := run(t, "data", "validate", "--data", good)
	row := tableRow(got, good)
	// subject examples skipped tokens learnt trunc cut drop dups file
	if err != nil || len(row) != 10 || row[0] != "good" || row[1] != "3" || row[3] == "0" || row[8] != "1" {
		t.Fatalf("validate --data %s: %v, row %q\n%s", good, err, row, got)
	}

	bad := writeData(t, dir, "bad.jsonl", recFrance, recPeru, recFrance, recBroken)
	got, err = run(t, "data", "validate", "--data", bad)
	if err == nil || !strings.Contains(got, "bad: error: "+bad+":4:") || !strings.Contains(err.Error(), bad+" has problems") {
		t.Fatalf("a malformed record: %v\n%s", err, got)
	}
	got, err = run(t, "data", "validate", "--data", bad, "--skip-bad")
	if row := tableRow(got, bad); err != nil || len(row) != 10 || row[1] != "3" || row[2] != "1" || !strings.Contains(got, "bad: skipped: "+bad+":4:") {
		t.Fatalf("--skip-bad: %v, row %q\n%s", err, row, got)
	}
	// With --seq-len too short for any answer, train refuses the subject.
	got, err = run(t, "data", "validate", "--data", good, "--seq-len", "8")
	if err == nil || !strings.Contains(got, "subject good: all 3 examples were dropped") {
		t.Fatalf("nothing fits: %v\n%s", err, got)
	}
}

// TestDataValidateCountsWhatTheRunLearns: data validate's learnt column
// follows data.train_on_inputs and data.mask_history, as the run's
// labels do (it counted answers only whatever they said).
func TestDataValidateCountsWhatTheRunLearns(t *testing.T) {
	turns := `{"messages":[{"role":"user","content":"2+2?"},{"role":"assistant","content":"Four, I think."},{"role":"user","content":"Sure?"},{"role":"assistant","content":"Yes: four."}]}`
	file := writeData(t, t.TempDir(), "turns.jsonl", turns, turns)
	learnt := func(sets ...string) int {
		t.Helper()
		got, err := run(t, append([]string{"data", "validate", "--data", file}, sets...)...)
		row := tableRow(got, file)
		if err != nil || len(row) != 10 {
			t.Fatalf("validate %v: %v, row %q\n%s", sets, err, row, got)
		}
		n, err := strconv.Atoi(row[4])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	answers := learnt()
	if last := learnt("--set", "data.mask_history=true"); last == 0 || last >= answers {
		t.Errorf("mask_history: %d learnt tokens, %d without", last, answers)
	}
	if all := learnt("--set", "data.train_on_inputs=true"); all <= answers {
		t.Errorf("train_on_inputs: %d learnt tokens, %d without", all, answers)
	}
}

// TestDataValidateUsesTheRunsTemplate: data validate and prepare read the
// model's own chat template whatever data.template said, so a tool-calling
// file that trains through Qwen2.5's template was refused there (tiny-base's
// ChatML writes no tool calls), and counts differed from the run's.
func TestDataValidateUsesTheRunsTemplate(t *testing.T) {
	call := `{"messages":[{"role":"user","content":"What is Fe?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"element","arguments":"{\"symbol\": \"Fe\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"iron"},{"role":"assistant","content":"Iron."}],"tools":[{"type":"function","function":{"name":"element","parameters":{"type":"object","properties":{}}}}]}`
	file := writeData(t, t.TempDir(), "calls.jsonl", call)
	got, err := run(t, "data", "validate", "--data", file, "--seq-len", "512")
	if err == nil || !strings.Contains(got, "chat template does not render tool calling") {
		t.Fatalf("tool calls through ChatML: %v\n%s", err, got)
	}
	qwen, err := filepath.Abs(filepath.Join("..", "..", "data", "chat", "testdata", "tools", "Qwen-Qwen2.5-7B-Instruct.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	got, err = run(t, "data", "validate", "--data", file, "--seq-len", "512", "--set", "data.template="+qwen)
	if row := tableRow(got, file); err != nil || len(row) != 10 || row[1] != "1" || row[4] == "0" {
		t.Fatalf("through Qwen2.5's template: %v, row %q\n%s", err, row, got)
	}
}

// TestDataCommandsRefusePreferenceObjectives: prepare writes token caches
// of supervised data; under dpo or kto it says so, and what to run to
// check preference records (validate, which reads them as the run does:
// TestDataValidatePreferences), rather than refuse each record as not
// supervised.
func TestDataCommandsRefusePreferenceObjectives(t *testing.T) {
	for _, objective := range []string{"dpo", "kto"} {
		_, err := run(t, "data", "prepare", "--out", t.TempDir(), "--data", filepath.Join("..", "..", "testdata", "kto", "chemistry-feedback.jsonl"), "--set", "training.objective="+objective)
		if err == nil || !strings.Contains(err.Error(), "training.objective "+objective+": ftune data prepare writes token caches of supervised data") || !strings.Contains(err.Error(), "run ftune data validate with the same flags") {
			t.Errorf("data prepare under %s: %v", objective, err)
		}
	}
}

// TestDataFlagAsTrainReadsIt: --data is train's: repeatable, files read
// together as the subject "data" (reported file by file), globs, a file
// given twice refused, and not together with --data-root.
func TestDataFlagAsTrainReadsIt(t *testing.T) {
	dir := t.TempDir()
	a := writeData(t, dir, "a.jsonl", recFrance)
	b := writeData(t, dir, "b.jsonl", recPeru, recFrance)
	got, err := run(t, "data", "validate", "--data", a, "--data", filepath.Join(dir, "b*.jsonl"))
	ra, rb := tableRow(got, a), tableRow(got, b)
	if err != nil || len(ra) != 10 || len(rb) != 10 || ra[0] != "data" || rb[0] != "data" || ra[1] != "1" || rb[1] != "2" || rb[8] != "1" {
		t.Fatalf("two files: %v\n%s", err, got)
	}
	out := t.TempDir()
	got, err = run(t, "data", "prepare", "--data", a, "--data", b, "--out", out)
	if err != nil || !strings.Contains(got, "3 documents") || !strings.Contains(got, filepath.Join(out, "data", "train.tokens")+" (written)") {
		t.Fatalf("prepare two files: %v\n%s", err, got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", a, "--data", a}, "given twice"},
		{[]string{"--data", a, "--data-root", dir}, "set data.root or data.files, not both"},
		{[]string{"--data", filepath.Join(dir, "none.jsonl")}, "none.jsonl"},
	} {
		for _, cmd := range [][]string{{"data", "validate"}, {"data", "prepare", "--out", out}} {
			_, err := run(t, append(cmd, c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q %q: %v, want %q", cmd, c.args, err, c.want)
			}
		}
	}
}

// TestDataCommandsOnARootOfFiles: train reads a data root of files as
// subjects, one per file (beside subject folders); validate and prepare
// refused such a root. They read it as train does: the folders by split,
// each file as its subject's training examples, cached as its train split.
func TestDataCommandsOnARootOfFiles(t *testing.T) {
	root, _ := dataRoot(t) // subject folder tiny/
	geo := writeData(t, root, "geo.jsonl", recFrance, recPeru)
	// --data takes a folder of subject folders as the root it is, as train does.
	for _, flag := range []string{"--data-root", "--data"} {
		got, err := run(t, "data", "validate", flag, root)
		if row := tableRow(got, geo); err != nil || !strings.Contains(got, "tiny ") || len(row) != 10 || row[0] != "geo" || row[1] != "2" {
			t.Errorf("validate %s root: %v, row %q\n%s", flag, err, row, got)
		}
	}
	out := t.TempDir()
	for i, want := range []string{"(written)", "(up to date)"} {
		got, err := run(t, "data", "prepare", "--data-root", root, "--out", out)
		if err != nil || !strings.Contains(got, filepath.Join(out, "geo", "train.tokens")+" "+want) || !strings.Contains(got, filepath.Join(out, "tiny", "train.tokens")+" "+want) {
			t.Fatalf("prepare run %d: %v\n%s", i, err, got)
		}
	}
	// A bad record stops prepare naming the file and line, as it stops train.
	writeData(t, root, "geo.jsonl", recFrance, recBroken)
	if _, err := run(t, "data", "prepare", "--data-root", root, "--out", out); err == nil || !strings.Contains(err.Error(), "subject geo: "+geo+":2:") {
		t.Fatalf("prepare on a bad record: %v", err)
	}
}

// TestDataValidateReadsTheRunFile: data validate -c reads the run file's
// data and max_length as train does (it had no -c: the file's settings
// had to be typed again as flags, and a missed --seq-len checked another
// length than the run's); --set and the flags apply after it.
func TestDataValidateReadsTheRunFile(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, `{"prompt":"Tell me about the number %d, please, in some detail.","completion":" %d is a number that comes after %d and before %d in the usual order."}`+"\n", i, i, i-1, i+1)
	}
	data := filepath.Join(dir, "nums.jsonl")
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(file, []byte("data:\n  files: ["+data+"]\n  max_length: 16\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// 16 tokens: every prompt fills them, each example is dropped.
	out, err := run(t, "data", "validate", "-c", file)
	if err == nil || !strings.Contains(err.Error(), "nums.jsonl has problems") || !strings.Contains(out, "nums.jsonl") {
		t.Fatalf("validate -c: %v\n%s\nwant the run file's data, its examples dropped at its max_length 16", err, out)
	}
	if out, err := run(t, "data", "validate", "-c", file, "--seq-len", "256"); err != nil || !strings.Contains(out, "nums.jsonl") {
		t.Errorf("--seq-len 256 after -c: %v\n%s\nwant the file's examples kept", err, out)
	}
	if _, err := run(t, "data", "validate", "-c", file, "--set", "data.max_length=5"); err == nil || !strings.Contains(err.Error(), "data.max_length: must be >= 16") {
		t.Errorf("--set after -c: %v, want data.max_length refused", err)
	}
}

// TestTrainSkipsBadRecordsWhenAsked: data.skip_bad (--skip-bad) reaches
// train, as data validate and prepare had it: the malformed records are
// counted and named, the others trained on (train had no such setting,
// so data those accepted failed there). Without
// it the first one stops the run, naming its line.
func TestTrainSkipsBadRecordsWhenAsked(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, `{"prompt":"What is %d plus %d?","completion":" %d"}`+"\n", i, i, 2*i)
		if i == 9 {
			b.WriteString(`{"prompt": "a trailing comma",}` + "\n")
		}
	}
	data := filepath.Join(dir, "sums.jsonl")
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"train", "--data", data, "--max-steps", "1", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0", "--output", dir, "--no-progress"}
	if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "sums.jsonl:11:") {
		t.Fatalf("a malformed record without --skip-bad: %v; want it refused naming line 11", err)
	}
	out, err := run(t, append(args, "--skip-bad")...)
	if err != nil || !strings.Contains(out, "sums.jsonl: 1 malformed records skipped (data.skip_bad), of 31; "+data+":11:") || !strings.Contains(out, "30 examples") {
		t.Errorf("train --skip-bad: %v\n%s\nwant the record skipped and said, 30 examples trained on", err, out)
	}
}

// TestDataValidateDocuments: a folder of Markdown documents is validated
// as train reads it, one example per file, and a document longer than the
// sequence length is counted in the split column (a run cuts it into
// pieces, each trained on); with data.long_text truncate it is counted as
// truncated instead. An empty document beside it is a note, as the run
// leaves it out, not an error.
func TestDataValidateDocuments(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "guide.md")
	if err := os.WriteFile(doc, []byte("# Guide\n\n"+strings.Repeat("Press the red key, then turn the dial to seven.\n\n", 30)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stub.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := run(t, "data", "validate", "--data", dir, "--seq-len", "64")
	if !strings.Contains(got, "data: note: "+filepath.Join(dir, "stub.md")+": no example: a run leaves it out") {
		t.Fatalf("the empty document is not noted:\n%s", got)
	}
	// subject examples skipped tokens learnt trunc cut drop dups file
	if row := tableRow(got, doc); err != nil || len(row) != 10 || row[1] != "1" || row[5] != "0" || row[6] != "1" {
		t.Fatalf("validate a folder of documents: %v, row %q\n%s", err, row, got)
	}
	got, err = run(t, "data", "validate", "--data", dir, "--seq-len", "64", "--set", "data.long_text=truncate")
	if row := tableRow(got, doc); err != nil || len(row) != 10 || row[5] != "1" || row[6] != "0" {
		t.Fatalf("long_text truncate: %v, row %q\n%s", err, row, got)
	}
}

// TestDataPrepareUpToDateSplitsLongText: a second prepare of a text file
// whose long paragraphs are split (data.long_text: split, rows of
// --seq-len tokens) found its cache up to date and then warned that those
// paragraphs were over the model's positions, as the first run, which
// knew they were split, did not.
func TestDataPrepareUpToDateSplitsLongText(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text.txt")
	long := strings.Repeat("word ", 1500) + "\n\nA short paragraph.\n"
	if err := os.WriteFile(text, []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for i, want := range []string{"(written)", "(up to date)"} {
		got, err := run(t, "data", "prepare", "--data", text, "--set", "data.text_unit=paragraph", "--out", out)
		if err != nil || !strings.Contains(got, want) || strings.Contains(got, "positions") {
			t.Fatalf("run %d: %v\n%s", i+1, err, got)
		}
	}
}
