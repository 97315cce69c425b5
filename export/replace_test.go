package export

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A folder holding a config.json among the user's own files is the user's
// (issue 12: it used to be replaced and the files lost): refused without
// Force, moved aside and kept with it. A previous export is replaced.
func TestMergedHFNeverDeletesUserFiles(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{KeepBF16: true})
	out := filepath.Join(t.TempDir(), "model")
	writeFiles(t, out, map[string]string{"config.json": "{}", "notes.txt": "mine"})

	_, err := MergedHFWith(context.Background(), m, nil, tinyBase, out, MergedOptions{})
	if !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "notes.txt") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("export over the user's folder: err = %v, want ErrNotOurs naming notes.txt and --force", err)
	}
	if mustRead(t, filepath.Join(out, "notes.txt")) != "mine" || mustRead(t, filepath.Join(out, "config.json")) != "{}" {
		t.Fatal("the user's folder was changed")
	}

	res, err := MergedHFWith(context.Background(), m, nil, tinyBase, out, MergedOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) == 0 || !strings.Contains(res.Notes[len(res.Notes)-1], ".replaced-") {
		t.Fatalf("--force: notes %q do not say where the old folder went", res.Notes)
	}
	aside, _ := filepath.Glob(out + ".replaced-*")
	if len(aside) != 1 || mustRead(t, filepath.Join(aside[0], "notes.txt")) != "mine" {
		t.Fatalf("--force: the user's folder is not kept aside (found %v)", aside)
	}
	if _, err := nn.Load(out, nn.LoadOptions{}); err != nil {
		t.Fatalf("the export does not load: %v", err)
	}

	// Our own export is replaced in place, with nothing left beside it.
	if _, err := MergedHFWith(context.Background(), m, nil, tinyBase, out, MergedOptions{}); err != nil {
		t.Fatalf("re-export over ftune's own folder: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".model.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary folders left: %v", left)
	}
	// A file the user adds to an export makes it theirs.
	writeFiles(t, out, map[string]string{"README.md": "my notes"})
	if _, err := MergedHFWith(context.Background(), m, nil, tinyBase, out, MergedOptions{}); !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "README.md") {
		t.Fatalf("export over an export the user added to: err = %v, want ErrNotOurs naming README.md", err)
	}
}

// NaN weights (a diverged adapter) are refused, naming the tensor, and
// nothing is written: merged, PEFT.
func TestExportRefusesNonFinite(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{KeepBF16: true})
	a := adapter(t, m)
	mod := a.Modules()[0]
	b := a.Layers[mod].B.Value
	vals := b.F32()
	vals[3] = float32(math.NaN())
	b.CopyFrom(tensor.FromHost(m.Backend, tensor.F32, vals, b.Shape()...).To(b.DType()))

	out := filepath.Join(t.TempDir(), "merged")
	_, err := MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{})
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), mod) {
		t.Fatalf("merged export of a NaN adapter: err = %v, want ErrNonFinite naming %s", err, mod)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("merged export of a NaN adapter left %s", out)
	}
	// The error is the tensor's, not the temporary file's it was writing.
	if strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("the error names the temporary folder: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
		t.Fatalf("merged export of a NaN adapter left %d file(s) beside %s", len(ents), out)
	}
	peft := filepath.Join(t.TempDir(), "peft")
	if _, err := PEFT(a, peft, false); !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), mod+".lora_B.weight") {
		t.Fatalf("PEFT export of a NaN adapter: err = %v, want ErrNonFinite naming %s.lora_B.weight", err, mod)
	}
	if _, err := os.Stat(peft); !os.IsNotExist(err) {
		t.Fatalf("PEFT export of a NaN adapter left %s", peft)
	}
}

// TestMergedHFRemovesKilledTemps: the temporary folders of exports killed
// mid-write (".model.tmp-<n>", marked as ftune's partial output) are
// removed by the next export to the same folder, and nothing else beside
// it is touched.
func TestMergedHFRemovesKilledTemps(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{KeepBF16: true})
	dir := t.TempDir()
	out := filepath.Join(dir, "model")
	for _, name := range []string{".model.tmp-123", ".model.tmp-456"} {
		writeFiles(t, filepath.Join(dir, name), map[string]string{partialMarker: "", "model.safetensors": "half"})
	}
	keep := map[string]string{".model.tmp-notes/a.txt": "mine", ".other.tmp-1/a.txt": "mine", "model.tmp-1/a.txt": "mine"}
	for p, body := range keep {
		writeFiles(t, filepath.Join(dir, filepath.Dir(p)), map[string]string{filepath.Base(p): body})
	}
	res, err := MergedHFWith(context.Background(), m, nil, tinyBase, out, MergedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".model.tmp-[0-9]*"))
	if len(left) != 0 {
		t.Fatalf("leftovers of killed exports still there: %v", left)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "removed 2 temporary folder(s) of killed exports beside "+out+": .model.tmp-123") {
		t.Errorf("notes %q do not name the removed leftovers", res.Notes)
	}
	if aside, _ := filepath.Glob(out + ".replaced-*"); len(aside) != 0 {
		t.Errorf("leftovers of killed exports kept aside, not removed: %v", aside)
	}
	for p, body := range keep {
		if got := mustRead(t, filepath.Join(dir, p)); got != body {
			t.Errorf("%s changed: %q", p, got)
		}
	}
}

// TestReplaceFile: a file output (GGUF) replaces nothing it did not write.
// Absent or ours: written. A folder: refused. Another file: refused and
// untouched, or with force kept beside under a new name (and put back when
// the write fails).
func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	ours := FileRule{Ours: func(p string) error {
		if strings.HasPrefix(mustRead(t, p), "OURS") {
			return nil
		}
		return ErrNotOurs
	}}
	// As the GGUF writers do: a temporary file renamed over p.
	writer := func(p string) func() error {
		return func() error { return fsutil.WriteFileAtomic(p, []byte("OURS new"), 0o644) }
	}
	failing := func() error { return errors.New("disk full") }

	absent := filepath.Join(dir, "a.gguf")
	if kept, _, err := ReplaceFile(absent, false, ours, writer(absent)); err != nil || kept != "" || mustRead(t, absent) != "OURS new" {
		t.Fatalf("absent path: kept %q, err %v, content %q", kept, err, mustRead(t, absent))
	}
	// As a merged or PEFT export makes its folder's parents, a GGUF file's
	// are made (the temporary file beside it failed to open before).
	nested := filepath.Join(dir, "new", "sub", "c.gguf")
	if _, _, err := ReplaceFile(nested, false, ours, writer(nested)); err != nil || mustRead(t, nested) != "OURS new" {
		t.Fatalf("a path in folders that do not exist: %v; want them made and the file written", err)
	}
	earlier := filepath.Join(dir, "b.gguf")
	writeFiles(t, dir, map[string]string{"b.gguf": "OURS old"})
	if kept, _, err := ReplaceFile(earlier, false, ours, writer(earlier)); err != nil || kept != "" || mustRead(t, earlier) != "OURS new" {
		t.Fatalf("our earlier file: kept %q, err %v, content %q; want it replaced", kept, err, mustRead(t, earlier))
	}
	if _, _, err := ReplaceFile(dir, true, ours, writer(dir)); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("a folder as the output file: %v; want it refused", err)
	}
	users := filepath.Join(dir, "notes.txt")
	writeFiles(t, dir, map[string]string{"notes.txt": "the user's"})
	if _, _, err := ReplaceFile(users, false, ours, writer(users)); !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "--force") || mustRead(t, users) != "the user's" {
		t.Fatalf("the user's file without force: err %v, content %q; want ErrNotOurs and the file untouched", err, mustRead(t, users))
	}
	if _, _, err := ReplaceFile(users, true, ours, failing); err == nil || mustRead(t, users) != "the user's" {
		t.Fatalf("force with a failing write: err %v, content %q; want the error and the user's file back in place", err, mustRead(t, users))
	}
	if left, _ := filepath.Glob(users + ".replaced-*"); len(left) != 0 {
		t.Fatalf("force with a failing write left %v beside the user's file", left)
	}
	kept, _, err := ReplaceFile(users, true, ours, writer(users))
	if err != nil || kept == "" || mustRead(t, kept) != "the user's" || mustRead(t, users) != "OURS new" {
		t.Fatalf("force: kept %q, err %v; want the user's file kept aside and the new one in place", kept, err)
	}
}

// TestPEFTNeverDeletesUserFiles: a PEFT export replaces its own earlier
// folder, and refuses a folder holding another adapter (it used to write
// over that adapter's files), or with force moves it aside, kept.
func TestPEFTNeverDeletesUserFiles(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{KeepBF16: true})
	a := adapter(t, m)
	out := filepath.Join(t.TempDir(), "adapter")
	for range 2 {
		if _, err := PEFT(a, out, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, ManifestFile)); err != nil {
		t.Fatalf("a PEFT export has no manifest: %v", err)
	}
	users := filepath.Join(t.TempDir(), "their-adapter")
	writeFiles(t, users, map[string]string{"adapter_config.json": "{}", "adapter_model.safetensors": "theirs"})
	if _, err := PEFT(a, users, false); !errors.Is(err, ErrNotOurs) || mustRead(t, filepath.Join(users, "adapter_model.safetensors")) != "theirs" {
		t.Fatalf("export over another adapter: err = %v; want ErrNotOurs and their files untouched", err)
	}
	notes, err := PEFT(a, users, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "moved to "+users+".replaced-") {
		t.Fatalf("forced export's notes %q do not say where the folder went", notes)
	}
	kept := strings.TrimSuffix(strings.SplitN(notes[0], "moved to ", 2)[1], " (nothing deleted)")
	if mustRead(t, filepath.Join(kept, "adapter_model.safetensors")) != "theirs" {
		t.Fatalf("the moved-aside folder %s lost their adapter", kept)
	}
}

// TestReplaceFileRemovesKilledTempFiles: the temporary files that killed
// writes of a GGUF file left beside it (".m.gguf.tmp-<n>", empty or a
// GGUF's beginning) are removed by the next write to that path, and said;
// a file of that name holding anything else, one a live process holds
// open (a write under way), folders and other names are left, and a
// refused write removes nothing.
func TestReplaceFileRemovesKilledTempFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("whether a process holds a file open is read from /proc")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	writeFiles(t, dir, map[string]string{
		".m.gguf.tmp-123": "GGUF\x03\x00\x00\x00half a model",
		".m.gguf.tmp-456": "",
	})
	keep := map[string]string{
		".m.gguf.tmp-789":     "the user's notes",
		".m.gguf.tmp-draft":   "GGUF mine",
		".other.gguf.tmp-1":   "GGUF another output's",
		"m.gguf.tmp-1":        "GGUF",
		".m.gguf.tmp-5/a.txt": "a folder",
		".m.gguf.tmp-999":     "GGUF being written",
	}
	for p, body := range keep {
		writeFiles(t, filepath.Join(dir, filepath.Dir(p)), map[string]string{filepath.Base(p): body})
	}
	live, err := os.Open(filepath.Join(dir, ".m.gguf.tmp-999"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	writeFiles(t, dir, map[string]string{"m.gguf": "the user's model"})
	rule := FileRule{Ours: func(p string) error {
		if mustRead(t, p) == "OURS" {
			return nil
		}
		return ErrNotOurs
	}}
	write := func() error { return os.WriteFile(path, []byte("OURS"), 0o644) }
	if _, _, err := ReplaceFile(path, false, rule, write); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("over the user's file: %v, want ErrNotOurs", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".m.gguf.tmp-123")); err != nil {
		t.Fatalf("a refused write removed a leftover: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, notes, err := ReplaceFile(path, false, rule, write)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".m.gguf.tmp-123", ".m.gguf.tmp-456"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("the leftover %s is still there (%v)", name, err)
		}
		if !strings.Contains(strings.Join(notes, "\n"), name) {
			t.Errorf("notes %q do not name the removed %s", notes, name)
		}
	}
	for p, body := range keep {
		if got := mustRead(t, filepath.Join(dir, p)); got != body {
			t.Errorf("%s changed: %q", p, got)
		}
	}
}
