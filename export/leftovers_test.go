package export

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The temporaries that exports of other outputs left in the folder an
// export writes into, killed (kill -9) before they finished, were kept
// until an export to their own path came, which may never come: a
// marked partial folder and a GGUF file's beginning that no live process
// holds are removed and said; what may be another's (a folder without
// the mark, a file of another content, a GGUF file written in the last
// minute, names of another pattern) is left.
func TestExportClearsKilledTempsOfOtherOutputs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("whether a process holds a file open is read from /proc")
	}
	// A file's status time cannot be set back: the files are older than
	// recentTemp by waiting.
	recentTemp = 300 * time.Millisecond
	t.Cleanup(func() { recentTemp = time.Minute })
	dir := t.TempDir()
	writeFiles(t, filepath.Join(dir, ".merged.tmp-123"), map[string]string{partialMarker: "", "model.safetensors": "half a model"})
	writeFiles(t, dir, map[string]string{".m.gguf.tmp-456": "GGUF\x03\x00\x00\x00half a model"})
	keep := map[string]string{
		".mine.tmp-1/a.txt":   "the user's folder",
		".notes.txt.tmp-2":    "the user's notes",
		".fresh.gguf.tmp-3":   "GGUF being written",
		".x.gguf.tmp-draft":   "GGUF",
		"plain.gguf.tmp-4":    "GGUF",
		".sealed.tmp-5/a.bin": "an export's folder",
	}
	for p, body := range keep {
		if !strings.HasPrefix(p, ".fresh") {
			writeFiles(t, filepath.Join(dir, filepath.Dir(p)), map[string]string{filepath.Base(p): body})
		}
	}
	time.Sleep(2 * recentTemp)
	writeFiles(t, dir, map[string]string{".fresh.gguf.tmp-3": keep[".fresh.gguf.tmp-3"]})

	notes, err := writeFolder(filepath.Join(dir, "peft"), "test", "", false, fillWeights("new"))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(notes, "\n")
	for _, name := range []string{".merged.tmp-123", ".m.gguf.tmp-456"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("the killed export's %s is still there (%v)", name, err)
		}
		if !strings.Contains(all, name) {
			t.Errorf("notes %q do not name the removed %s", notes, name)
		}
	}
	for p, body := range keep {
		if got := mustRead(t, filepath.Join(dir, p)); got != body {
			t.Errorf("%s changed: %q", p, got)
		}
	}

	// A GGUF export clears them as well.
	writeFiles(t, filepath.Join(dir, ".merged.tmp-77"), map[string]string{partialMarker: "", "model.safetensors": "half"})
	path := filepath.Join(dir, "l.gguf")
	_, notes, err = ReplaceFile(path, false, FileRule{Ours: func(string) error { return nil }}, func() error { return os.WriteFile(path, []byte("GGUF"), 0o644) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".merged.tmp-77")); !os.IsNotExist(err) || !strings.Contains(strings.Join(notes, "\n"), ".merged.tmp-77") {
		t.Errorf("a GGUF export left the killed export's .merged.tmp-77 (%v), notes %q", err, notes)
	}
}

// A temporary folder whose export is still running (its lock held) is
// left alone, whether it is an export to another output in the same
// folder or to the same one (which the next export once deleted, racing
// it), and said; once the lock is gone (the export killed), the next
// export removes it.
func TestExportLeavesRunningExportsTemps(t *testing.T) {
	if _, known := folderHeld(t.TempDir()); !known {
		t.Skip("no folder locks here")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	var releases []func()
	for _, name := range []string{".other.tmp-1", ".out.tmp-2"} {
		tmp, release, err := startTemp(filepath.Join(dir, name[1:len(name)-6]))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		releases = append(releases, release)
	}
	notes, err := writeFolder(out, "test", "", false, fillWeights("new"))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(notes, "\n")
	for _, name := range []string{".other.tmp-1", ".out.tmp-2"} {
		if _, err := os.Stat(filepath.Join(dir, name, partialMarker)); err != nil {
			t.Errorf("a running export's %s was touched: %v", name, err)
		}
		if !strings.Contains(all, name) {
			t.Errorf("notes %q do not name the running export's %s", notes, name)
		}
	}
	for _, release := range releases {
		release()
	}
	if _, err := writeFolder(out, "test", "", false, fillWeights("next")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".other.tmp-1", ".out.tmp-2"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("the killed export's %s is still there (%v)", name, err)
		}
	}
}
