package main

import (
	"os"
	"strings"
	"testing"
)

// TestDataValidateSkipsOverBudget: a record whose chat template rendering
// is over its budget (a 17 MB answer against the 16 MiB string limit)
// is an error naming its line; with --skip-bad validate counts it and
// names it, and prepare refuses to write a cache that leaves it out.
func TestDataValidateSkipsOverBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("renders a 17 MB record")
	}
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	huge := `{"messages":[{"role":"user","content":"long?"},{"role":"assistant","content":"` + strings.Repeat("word ", 17<<20/5) + `"}]}`
	data := writeData(t, dir, "big.jsonl", recFrance, recPeru, huge, recPeru)
	got, err := run(t, "data", "validate", "--data", data)
	if err == nil || !strings.Contains(got, data+":3: render: ") || !strings.Contains(got, "over the rendering budget") {
		t.Fatalf("without --skip-bad: %v\n%s", err, got)
	}
	got, err = run(t, "data", "validate", "--data", data, "--skip-bad")
	if row := tableRow(got, data); err != nil || len(row) != 10 || row[1] != "4" || !strings.Contains(got, "1 records skipped while tokenizing (data.skip_bad):\n  "+data+":3: render: ") {
		t.Fatalf("--skip-bad: %v, row %q\n%s", err, row, got)
	}
	got, err = run(t, "data", "prepare", "--data", data, "--skip-bad", "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "1 records skipped while tokenizing (data.skip_bad)") || !strings.Contains(err.Error(), "a token cache holds every record") {
		t.Fatalf("prepare --skip-bad: %v\n%s", err, got)
	}
}

// TestDataPrepareSaysSkippedRecords: prepare --skip-bad dropped a file's
// malformed records without a word ("4 documents ... (written)" for 7
// records), where validate and train count them and name the first. It
// says them as train does, when it writes the cache and when it finds it
// up to date, for a data file and for a subject folder's split; the cache
// is written (a run with data.skip_bad reads the file and says them too).
func TestDataPrepareSaysSkippedRecords(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	data := writeData(t, dir, "bad.jsonl", recFrance, recBroken, recPeru, recBroken, recFrance, recBroken, recPeru)
	out := t.TempDir()
	for i, state := range []string{"(written)", "(up to date)"} {
		got, err := run(t, "data", "prepare", "--data", data, "--skip-bad", "--out", out)
		if err != nil || !strings.Contains(got, "data: "+data+": 3 malformed records skipped (data.skip_bad), of 7; "+data+":2:") ||
			!strings.Contains(got, " 4 documents") || !strings.Contains(got, state) {
			t.Fatalf("prepare %d: %v\n%s\nwant the 3 skipped records said, 4 documents %s", i, err, got, state)
		}
	}

	root, train := dataRoot(t)
	f, err := os.OpenFile(train, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(recBroken + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := run(t, "data", "prepare", "--data", root, "--skip-bad", "--out", t.TempDir())
	if err != nil || !strings.Contains(got, "data: "+train+": 1 malformed records skipped (data.skip_bad), of 4; "+train+":4:") || !strings.Contains(got, " 3 documents") {
		t.Fatalf("prepare of a subject folder: %v\n%s\nwant its 1 skipped record said", err, got)
	}
}
