package recipe

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// TestDataFilesSubjects: with data files, data.subjects selects among the
// files, each the subject named after it, and a name no file has is
// refused with the names there are (it used to be ignored).
func TestDataFilesSubjects(t *testing.T) {
	dir := t.TempDir()
	a := writeUserFile(t, dir, "algebra.jsonl", "chat", 4)
	writeUserFile(t, dir, "botany.jsonl", "alpaca", 3)
	o := fileOpts(dir)
	o.Subjects = []string{"botany"}
	srcs, _, err := readSources(context.Background(), o, Text{}, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].name != "botany" || len(srcs[0].train) != 3 {
		t.Fatalf("sources %+v, want botany alone with its 3 examples", srcs)
	}
	o.Subjects = []string{"chemistry"}
	if _, _, err := readSources(context.Background(), o, Text{}, io.Discard, false); err == nil || !strings.Contains(err.Error(), `no subject "chemistry"`) || !strings.Contains(err.Error(), "have: algebra, botany") {
		t.Fatalf("unknown subject: %v", err)
	}
	o = fileOpts(a)
	o.Subjects = []string{"geography"}
	if _, _, err := readSources(context.Background(), o, Text{}, io.Discard, false); err == nil || !strings.Contains(err.Error(), "have: algebra") {
		t.Fatalf("one file, unknown subject: %v", err)
	}
	o = fileOpts(filepath.Join(subjects, "geography"))
	o.Subjects = []string{"chemistry"}
	if _, _, err := readSources(context.Background(), o, Text{}, io.Discard, false); err == nil || !strings.Contains(err.Error(), `no subject "chemistry"`) || !strings.Contains(err.Error(), "have: geography") {
		t.Fatalf("a subject folder, another subject: %v", err)
	}
}

// TestDataFilesTwice: a file reached twice (the same path, a glob and a
// path, a folder and a path, a symbolic link) is refused naming it,
// rather than read twice.
func TestDataFilesTwice(t *testing.T) {
	dir := t.TempDir()
	a := writeUserFile(t, dir, "a.jsonl", "chat", 3)
	writeUserFile(t, dir, "b.jsonl", "chat", 3)
	link := filepath.Join(t.TempDir(), "link.jsonl")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	for name, entries := range map[string][]string{
		"same path":        {a, a},
		"glob and path":    {filepath.Join(dir, "*.jsonl"), a},
		"folder and path":  {dir, a},
		"a relative alias": {a, filepath.Join(dir, ".", "a.jsonl")},
		"a link":           {a, link},
	} {
		_, _, _, err := resolveDataFiles(entries)
		if err == nil || !strings.Contains(err.Error(), "a.jsonl is given") && !strings.Contains(err.Error(), "link.jsonl is given") || !strings.Contains(err.Error(), "give each file once") {
			t.Errorf("%s: %v, want a refusal naming the file", name, err)
		}
	}
	if files, _, _, err := resolveDataFiles([]string{filepath.Join(dir, "a*.jsonl"), filepath.Join(dir, "b.jsonl")}); err != nil || len(files) != 2 {
		t.Errorf("two different files: %v, %v", files, err)
	}
}

// TestSeenValidationIsWarned: validation examples that are training
// examples word for word are counted in a warning (the validation loss
// counted them as unseen without a word); distinct ones are not.
func TestSeenValidationIsWarned(t *testing.T) {
	ex := func(q, a string) format.Example {
		return format.Example{Messages: []format.Message{{Role: "user", Content: q}, {Role: "assistant", Content: a}}, Source: q}
	}
	train := []format.Example{ex("1+1?", "2"), ex("2+2?", "4"), ex("3+3?", "6")}
	var log strings.Builder
	warnSeenValidation(&log, "sums", prep.ExampleKeys(train), prep.ExampleKeys([]format.Example{ex("2+2?", "4"), ex("4+4?", "8")}))
	if want := "warning: subject sums: 1 of the 2 validation examples are also training examples, word for word"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q, want %q", log.String(), want)
	}
	log.Reset()
	warnSeenValidation(&log, "sums", prep.ExampleKeys(train), prep.ExampleKeys([]format.Example{ex("4+4?", "8"), ex("2+2?", "5")}))
	if log.Len() != 0 {
		t.Errorf("distinct validation examples warned: %q", log.String())
	}
}
