package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/nn"
)

// readRecord reads the ManifestFile of dir.
func readRecord(t *testing.T, dir string) manifest {
	t.Helper()
	var m manifest
	if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(dir, ManifestFile))), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The audit's case: a merged export over a PEFT export replaced the
// adapter with no word, where a GGUF export refuses a file of another
// kind. A folder of another format is refused (ErrOtherKind), or with
// force moved aside and kept.
func TestFolderExportRefusesAnotherFormat(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{KeepBF16: true})
	a := adapter(t, m)
	out := filepath.Join(t.TempDir(), "peft")
	if _, err := PEFT(a, out, false); err != nil {
		t.Fatal(err)
	}
	cfg := mustRead(t, filepath.Join(out, "adapter_config.json"))
	_, err := MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{})
	if !errors.Is(err, ErrOtherKind) || !strings.Contains(err.Error(), "PEFT") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("merged over a PEFT export: err = %v, want ErrOtherKind naming the PEFT adapter and --force", err)
	}
	if mustRead(t, filepath.Join(out, "adapter_config.json")) != cfg {
		t.Fatal("the refused export changed the PEFT folder")
	}
	res, err := MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(out + ".replaced-*")
	if len(aside) != 1 || mustRead(t, filepath.Join(aside[0], "adapter_config.json")) != cfg || !strings.Contains(strings.Join(res.Notes, "\n"), aside[0]) {
		t.Fatalf("--force: the PEFT export is at %v; notes %q", aside, res.Notes)
	}
}

// Every file an export writes has its SHA-256 in the record; a file the
// user edited since (a merged export's generation_config.json) makes the
// folder theirs: refused naming the file, or with force moved aside with
// the edit. An unedited earlier export of the same format is replaced,
// and said.
func TestFolderExportRefusesEditedFiles(t *testing.T) {
	m := load(t, tinyBase, nn.LoadOptions{KeepBF16: true})
	a := adapter(t, m)
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := readRecord(t, out)
	if len(rec.Files) == 0 {
		t.Fatal("the record lists no files")
	}
	raw := map[string]any{}
	_ = json.Unmarshal([]byte(mustRead(t, filepath.Join(out, ManifestFile))), &raw)
	sums, _ := raw["sha256"].(map[string]any)
	for _, name := range rec.Files {
		sum := sha256.Sum256([]byte(mustRead(t, filepath.Join(out, name))))
		if sums[name] != hex.EncodeToString(sum[:]) {
			t.Errorf("the record's sha256 of %s is %v, want %x", name, sums[name], sum)
		}
	}

	res, err := MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(res.Notes, "\n"); !strings.Contains(all, "replaced "+out+" (") {
		t.Errorf("re-export over an earlier export: notes %q do not say it replaced it", res.Notes)
	}

	gen := filepath.Join(out, "generation_config.json")
	edited := `{"temperature": 0.2}`
	if err := os.WriteFile(gen, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{})
	if !errors.Is(err, ErrEdited) || !strings.Contains(err.Error(), "generation_config.json") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("export over an edited export: err = %v, want ErrEdited naming generation_config.json and --force", err)
	}
	if mustRead(t, gen) != edited {
		t.Fatal("the refused export put the edited file back")
	}
	res, err = MergedHFWith(context.Background(), m, a, tinyBase, out, MergedOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(out + ".replaced-*")
	if len(aside) != 1 || mustRead(t, filepath.Join(aside[0], "generation_config.json")) != edited {
		t.Fatalf("--force: the edited export is at %v (notes %q)", aside, res.Notes)
	}
}

// writeOldRecord writes an export as ftune wrote them before records held
// hashes: weights.bin and a record naming it, the file older than the
// record when edited is false, newer when true.
func writeOldRecord(t *testing.T, out string, edited bool) {
	t.Helper()
	writeFiles(t, out, map[string]string{"weights.bin": "old", ManifestFile: `{"written_by": "ftune", "format": "test", "files": ["weights.bin"]}` + "\n"})
	at := time.Now().Add(-time.Hour)
	file := at.Add(-time.Minute)
	if edited {
		file = at.Add(time.Minute)
	}
	if err := os.Chtimes(filepath.Join(out, ManifestFile), at, at); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(out, "weights.bin"), file, file); err != nil {
		t.Fatal(err)
	}
}

// A record of an earlier ftune has no hashes: a file changed after the
// record was written (newer than it) is taken as the user's edit, and
// refused; otherwise the export is replaced, and the note says how it
// was checked.
func TestFolderExportOlderRecords(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	writeOldRecord(t, out, true)
	if _, err := writeFolder(out, "test", "", false, fillWeights("new")); !errors.Is(err, ErrEdited) || !strings.Contains(err.Error(), "weights.bin") {
		t.Fatalf("an older export with a file newer than its record: err = %v, want ErrEdited naming weights.bin", err)
	}
	if mustRead(t, filepath.Join(out, "weights.bin")) != "old" {
		t.Fatal("the refused export changed the folder")
	}
	writeOldRecord(t, out, false)
	notes, err := writeFolder(out, "test", "", false, fillWeights("new"))
	if err != nil {
		t.Fatal(err)
	}
	checkExport(t, out, "new")
	if all := strings.Join(notes, "\n"); !strings.Contains(all, "replaced "+out+" (") || !strings.Contains(all, "no content hashes") {
		t.Errorf("notes %q do not say the older export was replaced, checked without hashes", notes)
	}
}

// A GGUF file written over an earlier one of its kind is said.
func TestReplaceFileSaysWhatItReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	writeFiles(t, filepath.Dir(path), map[string]string{"m.gguf": "OURS old"})
	rule := FileRule{Ours: func(string) error { return nil }}
	_, notes, err := ReplaceFile(path, false, rule, func() error { return fsutil.WriteFileAtomic(path, []byte("OURS new"), 0o644) })
	if err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(notes, "\n"); !strings.Contains(all, "replaced "+path+" (") {
		t.Errorf("notes %q do not say the earlier file was replaced", notes)
	}
}
