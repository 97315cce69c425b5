package recipe

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
)

// writeFiles writes name: content files into a new folder, returning
// their paths in the order given.
func writeFiles(t *testing.T, files ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i := 0; i+1 < len(files); i += 2 {
		p := filepath.Join(dir, files[i])
		if err := os.WriteFile(p, []byte(files[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func readFilesLogged(t *testing.T, files []string, fo format.Options) ([]format.Example, string, error) {
	t.Helper()
	var log bytes.Buffer
	exs, _, _, err := readFiles(context.Background(), files, fo, &log)
	return exs, log.String(), err
}

// TestDocumentsLeftOut: of a folder of documents, one example each, a
// file with none (empty, blank, or its one record skipped as bad under
// data.skip_bad) is left out saying so, where before it stopped the run
// (and skip_bad could never skip a document); the subject fails only
// when no file has an example, naming them, and a file given alone that
// holds none stays an error.
func TestDocumentsLeftOut(t *testing.T) {
	files := writeFiles(t, "a.md", "# Dials\n\nTurn clockwise.\n", "empty.md", "", "ws.md", " \n\n\t\n", "latin1.md", "# Caf\xe9\n")
	good, empty, ws, latin1 := files[0], files[1], files[2], files[3]

	exs, log, err := readFilesLogged(t, []string{good, empty, ws}, format.Options{})
	if err != nil || len(exs) != 1 {
		t.Fatalf("%d examples, %v; want a.md's alone\n%s", len(exs), err, log)
	}
	for _, want := range []string{"data: " + empty + ": no example (empty): left out\n", "data: " + ws + ": no example (blank): left out\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}

	// A document not UTF-8 stops the read unless skip_bad skips it.
	if _, _, err := readFilesLogged(t, []string{good, latin1}, format.Options{}); !errors.Is(err, format.ErrInvalidUTF8) || !strings.Contains(err.Error(), "latin1.md:1:6") {
		t.Errorf("latin1.md without skip_bad: %v", err)
	}
	exs, log, err = readFilesLogged(t, []string{latin1, good}, format.Options{Skip: true})
	if err != nil || len(exs) != 1 ||
		!strings.Contains(log, "data: "+latin1+": 1 malformed records skipped (data.skip_bad), of 1; "+latin1+":1:6: ") ||
		!strings.Contains(log, "data: "+latin1+": no example (its one record skipped as bad): left out\n") {
		t.Errorf("latin1.md under skip_bad: %d examples, %v\n%s", len(exs), err, log)
	}

	// No file with an example: the error names them.
	_, _, err = readFilesLogged(t, []string{empty, ws}, format.Options{})
	if !errors.Is(err, format.ErrEmptyDataset) || !strings.Contains(err.Error(), empty+", "+ws+": empty dataset: no examples in any of the 2 files") {
		t.Errorf("only empty files: %v", err)
	}
	_, _, err = readFilesLogged(t, []string{empty, latin1}, format.Options{Skip: true})
	if !errors.Is(err, format.ErrEmptyDataset) || !strings.Contains(err.Error(), "no valid examples in any of the 2 files (1 bad records skipped)") {
		t.Errorf("an empty file and a bad one under skip_bad: %v", err)
	}
	for _, f := range []string{empty, ws} {
		if _, _, err := readFilesLogged(t, []string{f}, format.Options{}); !errors.Is(err, format.ErrEmptyDataset) || !strings.Contains(err.Error(), f+": empty dataset: no examples") {
			t.Errorf("%s alone: %v", filepath.Base(f), err)
		}
	}
}

// TestLeftOutDocumentInTheCacheKey: a document left out is still in the
// token cache's key and the run's record of what it read, as read, so
// writing it makes the cache stale: a warm run would otherwise train on
// the cache without it.
func TestLeftOutDocumentInTheCacheKey(t *testing.T) {
	dir := writeDocs(t, 2)
	empty := filepath.Join(dir, "empty.md")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o := fileOpts(dir)
	o.SeqLen, o.TokenCache, o.ValSplit = 64, t.TempDir(), 0
	cold, log := loadWith(t, o, 0)
	if !strings.Contains(log, "data: "+empty+": no example (empty): left out") || cold.stats["data"].Examples != 2 {
		t.Fatalf("cold load: %+v\n%s", cold.stats["data"], log)
	}
	if len(cold.reads) != 3 || cold.reads[0].Path != empty || cold.reads[0].Size != 0 {
		t.Errorf("the run's record of the files read %+v: want empty.md among them", cold.reads)
	}
	warm, log := loadWith(t, o, 0)
	if !warm.cached["data"] || len(warm.reads) != 3 {
		t.Fatalf("an unchanged folder is not read from its cache (reads %+v):\n%s", warm.reads, log)
	}
	if err := os.WriteFile(empty, []byte("# Written since\n\nPress reset.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	edited, log := loadWith(t, o, 0)
	if edited.cached["data"] || edited.stats["data"].Examples != 3 {
		t.Errorf("after empty.md was written: cached %v, %d examples; want the cache rebuilt with 3\n%s", edited.cached["data"], edited.stats["data"].Examples, log)
	}
}
