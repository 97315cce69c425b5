package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataValidateHubSplits: data validate on a Hugging Face dataset
// folder checked its train shards only, while train also reads its
// validation split (validated on) and, for the held-out questions, its
// test split. It counts each split's files as train reads them: the
// validation rows marked val, an example repeated from the train split
// among their duplicates; the test split marked test and said to be read
// for the questions only, and not read when there are none; a malformed
// validation record is an error naming its file and line, as train stops
// at it.
func TestDataValidateHubSplits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "capitals")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# Capitals\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := func(country, city string) string {
		return `{"messages":[{"role":"user","content":"Capital of ` + country + `?"},{"role":"assistant","content":"` + city + `"}]}`
	}
	train0 := writeData(t, data, "train-00000-of-00002.jsonl", recFrance, recPeru)
	train1 := writeData(t, data, "train-00001-of-00002.jsonl", rec("Chile", "Santiago"), rec("Japan", "Tokyo"))
	val := writeData(t, data, "validation-00000-of-00001.jsonl", rec("Kenya", "Nairobi"), recPeru, rec("Ghana", "Accra"))
	test := writeData(t, data, "test-00000-of-00001.jsonl", rec("Mali", "Bamako"), rec("Fiji", "Suva"))

	got, err := run(t, "data", "validate", "--data", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	// subject examples skipped tokens learnt trunc cut drop dups file
	for _, want := range []struct {
		file, subject, examples, dups string
	}{
		{train0, "capitals", "2", "0"},
		{train1, "capitals", "2", "0"},
		{val, "capitals/val", "3", "1"},
		{test, "capitals/test", "2", "0"},
	} {
		row := tableRow(got, want.file)
		if len(row) != 10 || row[0] != want.subject || row[1] != want.examples || row[3] == "0" || row[8] != want.dups {
			t.Errorf("row of %s: %q, want subject %s, %s examples, tokens, %s duplicates\n%s", want.file, row, want.subject, want.examples, want.dups, got)
		}
	}
	if !strings.Contains(got, "capitals: note: the test split is read for the held-out questions only (eval.generation.questions): never trained or validated on") {
		t.Errorf("the test split's use is not said:\n%s", got)
	}

	// No questions: train does not read the test split, nor does validate.
	got, err = run(t, "data", "validate", "--data", dir, "--set", "training.eval.generation.questions=0")
	if err != nil || tableRow(got, test) != nil || tableRow(got, val) == nil {
		t.Fatalf("questions 0: %v, the test split counted or the validation split not\n%s", err, got)
	}

	// A malformed validation record stops train: validate names it.
	writeData(t, data, "validation-00000-of-00001.jsonl", rec("Kenya", "Nairobi"), recBroken)
	got, err = run(t, "data", "validate", "--data", dir)
	if err == nil || !strings.Contains(got, "capitals: error: "+val+":2:") {
		t.Fatalf("a malformed validation record: %v\n%s", err, got)
	}
}
