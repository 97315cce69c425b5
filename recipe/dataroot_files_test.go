package recipe

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rootOpts reads root as data.root (--data-root).
func rootOpts(root string) Options {
	o := dataOptions()
	o.DataRoot, o.Pack = root, false
	return o
}

// TestDataRootFiles: a data root may hold data files beside (or instead
// of) subject folders, each file the subject named after it, as data.files
// names a file's subject, with a share held out for validation as for a
// data file; it used to be refused with "no subject folders".
func TestDataRootFiles(t *testing.T) {
	root := t.TempDir()
	writeUserFile(t, root, "chemistry.jsonl", "chat", 20)
	writeUserFile(t, root, "law.jsonl", "alpaca", 10)
	if err := os.WriteFile(filepath.Join(root, "README.md"), []byte("not a subject"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, log := loadTestData(t, rootOpts(root))
	if strings.Join(ds.subjects, ",") != "chemistry,law" {
		t.Fatalf("subjects %v, want [chemistry law]:\n%s", ds.subjects, log)
	}
	if n := rowSubjects(ds); n["chemistry"] != 18 || n["law"] != 9 || len(ds.val) != 3 {
		t.Errorf("training rows per subject %v and %d validation rows, want 18 and 9, and 3 held out", n, len(ds.val))
	}
	for _, want := range []string{"subject chemistry: no validation file; 2 of 20", "subject law: no validation file; 1 of 10", "law.jsonl: jsonl, shape alpaca (detected)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not say %q:\n%s", want, log)
		}
	}

	// Folders and files together, sorted by name; data.subjects selects
	// among both.
	geo := filepath.Join(root, "geography")
	if err := os.Mkdir(geo, 0o755); err != nil {
		t.Fatal(err)
	}
	writeUserFile(t, geo, "train.jsonl", "chat", 6)
	writeUserFile(t, geo, "val.jsonl", "chat", 2)
	srcs, _, err := readSources(context.Background(), rootOpts(root), Text{}, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.name)
	}
	if !slices.Equal(names, []string{"chemistry", "geography", "law"}) || len(srcs[1].val) != 2 {
		t.Fatalf("sources %v, want chemistry, geography (with its val file), law", names)
	}
	o := rootOpts(root)
	o.Subjects = []string{"law", "geography"}
	if srcs, _, err = readSources(context.Background(), o, Text{}, io.Discard, false); err != nil || len(srcs) != 2 || srcs[0].name != "law" || len(srcs[0].train) != 10 {
		t.Fatalf("data.subjects [law geography]: %v", err)
	}
	o.Subjects = []string{"botany"}
	if _, _, err := readSources(context.Background(), o, Text{}, io.Discard, false); err == nil || !strings.Contains(err.Error(), "have: chemistry, geography, law") {
		t.Fatalf("an unknown subject: %v", err)
	}
}

// TestDataRootFilesRefused: a subject given twice (a folder and a file, or
// two files) is refused naming both, a file named after a split (the root
// is one subject's folder) is refused rather than made subject "train",
// and a root with neither folders nor data files says what it wants.
func TestDataRootFilesRefused(t *testing.T) {
	tp, _ := LoadText(tinyBase, 0)
	load := func(root string) error {
		_, err := loadData(context.Background(), rootOpts(root), tp, 0)
		return err
	}

	root := t.TempDir()
	law := filepath.Join(root, "law")
	if err := os.Mkdir(law, 0o755); err != nil {
		t.Fatal(err)
	}
	writeUserFile(t, law, "train.jsonl", "chat", 4)
	file := writeUserFile(t, root, "law.jsonl", "chat", 4)
	if err := load(root); err == nil || !strings.Contains(err.Error(), `subject "law" is given twice`) || !strings.Contains(err.Error(), law+" and by "+file) {
		t.Errorf("law/ and law.jsonl: %v", err)
	}

	root = t.TempDir()
	a := writeUserFile(t, root, "law.jsonl", "chat", 4)
	if err := os.WriteFile(filepath.Join(root, "law.csv"), []byte("question,answer\nQ?,A\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := load(root); err == nil || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), filepath.Join(root, "law.csv")) {
		t.Errorf("law.jsonl and law.csv: %v", err)
	}

	root = t.TempDir()
	writeUserFile(t, root, "train.jsonl", "chat", 4)
	if err := load(root); err == nil || !strings.Contains(err.Error(), "train.jsonl is named after a split") {
		t.Errorf("a root holding train.jsonl: %v", err)
	}

	root = t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "notes.md"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := load(root); err == nil || !strings.Contains(err.Error(), "no subject folders and no data files") {
		t.Errorf("an empty root: %v", err)
	}
}
