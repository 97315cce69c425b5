package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/nn"
)

// writeLookalikes puts in dir what is named as the temporaries of other
// outputs' exports (".<name>.tmp-<digits>"): a killed export's marked
// folder and GGUF file, the user's empty draft and GGUF-prefixed file, a
// folder holding the user's results; all an hour old. It returns each
// file's path and content.
func writeLookalikes(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{
		".merged.tmp-123/" + partialMarker:  "",
		".merged.tmp-123/model.safetensors": "half a model",
		".m.gguf.tmp-456":                   "GGUF\x03\x00\x00\x00half a model",
		".draft.md.tmp-20251201":            "",
		".model.gguf.tmp-42":                "GGUF\x03\x00\x00\x00mine",
		".scratch.tmp-3/" + partialMarker:   "",
		".scratch.tmp-3/results.csv":        "precious",
		".sealed.tmp-5/" + ManifestFile:     `{"written_by": "ftune", "format": "test", "files": []}`,
	}
	old := time.Now().Add(-time.Hour)
	for p, body := range files {
		writeFiles(t, filepath.Join(dir, filepath.Dir(p)), map[string]string{filepath.Base(p): body})
		if err := os.Chtimes(filepath.Join(dir, p), old, old); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// The audit's cases: temporaries of other outputs in the folder an export
// writes into were removed once they looked abandoned, and look-alikes of
// the user's (an empty .draft.md.tmp-20251201, a .model.gguf.tmp-42
// starting with GGUF) went with them; one that could not be removed (a
// leftover of another user's in a sticky folder) failed every export
// there. No export removes anything at another output's temporary name:
// folder and file exports name them once, with their size and how to
// remove them by hand, and never fail because of them.
func TestExportKeepsOtherOutputsTemps(t *testing.T) {
	dir := t.TempDir()
	files := writeLookalikes(t, dir)
	check := func(what string, notes []string) {
		t.Helper()
		for p, body := range files {
			if got := mustRead(t, filepath.Join(dir, p)); got != body {
				t.Errorf("%s: %s changed: %q", what, p, got)
			}
		}
		all := strings.Join(notes, "\n")
		for _, name := range []string{".merged.tmp-123", ".m.gguf.tmp-456", ".draft.md.tmp-20251201", ".model.gguf.tmp-42", ".scratch.tmp-3", ".sealed.tmp-5"} {
			if strings.Count(all, name+" (") != 1 {
				t.Errorf("%s: notes %q do not name %s once", what, notes, name)
			}
		}
		if !strings.Contains(all, "12 B") || !strings.Contains(all, "rm -r") || strings.Contains(all, "removed") {
			t.Errorf("%s: notes %q: want sizes, how to remove them by hand, and nothing removed", what, notes)
		}
	}
	notes, err := writeFolder(filepath.Join(dir, "peft"), "test", "", false, fillWeights("new"))
	if err != nil {
		t.Fatal(err)
	}
	check("folder export", notes)
	path := filepath.Join(dir, "l.gguf")
	_, notes, err = ReplaceFile(path, false, FileRule{Ours: func(string) error { return nil }}, func() error { return os.WriteFile(path, []byte("GGUF"), 0o644) })
	if err != nil {
		t.Fatal(err)
	}
	check("GGUF export", notes)

	// One the export cannot even read (another user's) fails nothing.
	locked := filepath.Join(dir, ".evil.tmp-7")
	writeFiles(t, filepath.Join(locked, "sub"), map[string]string{"f": "x"})
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	if _, err := writeFolder(filepath.Join(dir, "peft"), "test", "", false, fillWeights("next")); err != nil {
		t.Fatalf("an unreadable leftover of another output failed the export: %v", err)
	}
}

// The own output's temporaries are cleared by exact name only: a
// look-alike of another output (one more suffix, a name it begins with)
// is not the output's, and stays.
func TestOwnTempsExactNameOnly(t *testing.T) {
	dir := t.TempDir()
	keep := map[string]string{
		".out.tmp-1.tmp-2/" + partialMarker: "",
		".out2.tmp-3/" + partialMarker:      "",
		".xout.tmp-4/" + partialMarker:      "",
		".out.tmp-x/" + partialMarker:       "",
	}
	for p, body := range keep {
		writeFiles(t, filepath.Join(dir, filepath.Dir(p)), map[string]string{filepath.Base(p): body})
	}
	writeFiles(t, filepath.Join(dir, ".out.tmp-9"), map[string]string{partialMarker: "", "weights.bin": "half"})
	if _, err := writeFolder(filepath.Join(dir, "out"), "test", "", false, fillWeights("new")); err != nil {
		t.Fatal(err)
	}
	for p := range keep {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s, another output's, was touched: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, ".out.tmp-9")); !os.IsNotExist(err) {
		t.Errorf("the killed export's own .out.tmp-9 is still there (%v)", err)
	}
}

// A temporary folder whose export to the same output is still running
// (its lock held) is left alone, and said; once the lock is gone (the
// export killed), the next export to that output removes it.
func TestExportLeavesRunningExportsTemps(t *testing.T) {
	if _, known := folderHeld(t.TempDir()); !known {
		t.Skip("no folder locks here")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	tmp, release, err := startTemp(out)
	if err != nil {
		t.Fatal(err)
	}
	notes, err := writeFolder(out, "test", "", false, fillWeights("new"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tmp, partialMarker)); err != nil {
		t.Errorf("a running export's %s was touched: %v", tmp, err)
	}
	if !strings.Contains(strings.Join(notes, "\n"), filepath.Base(tmp)) {
		t.Errorf("notes %q do not name the running export's %s", notes, tmp)
	}
	release()
	if _, err := writeFolder(out, "test", "", false, fillWeights("next")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
		t.Errorf("the killed export's %s is still there (%v)", tmp, err)
	}
}

// A merged export says what is at other outputs' temporary names once
// (it checked twice: before its free-space check and in writeFolder).
func TestMergedNamesOtherOutputsTempsOnce(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{KeepBF16: true})
	a := adapter(t, m)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{".notes.md.tmp-1": ""})
	res, err := MergedHFWith(context.Background(), m, a, tinyBase, filepath.Join(dir, "merged"), MergedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(res.Notes, "\n"), ".notes.md.tmp-1 ("); n != 1 {
		t.Errorf("notes name .notes.md.tmp-1 %d times, want once: %q", n, res.Notes)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".notes.md.tmp-1")); err != nil {
		t.Error(err)
	}
}
