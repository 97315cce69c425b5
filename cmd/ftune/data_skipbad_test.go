package main

import (
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
	if row := tableRow(got, data); err != nil || len(row) != 9 || row[1] != "4" || !strings.Contains(got, "1 records skipped while tokenizing (data.skip_bad):\n  "+data+":3: render: ") {
		t.Fatalf("--skip-bad: %v, row %q\n%s", err, row, got)
	}
	got, err = run(t, "data", "prepare", "--data", data, "--skip-bad", "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "1 records skipped while tokenizing (data.skip_bad)") || !strings.Contains(err.Error(), "a token cache holds every record") {
		t.Fatalf("prepare --skip-bad: %v\n%s", err, got)
	}
}
