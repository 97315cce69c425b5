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
// hashes: weights.bin and a record naming it (with exportedAt, when set),
// the file older than the record.
func writeOldRecord(t *testing.T, out, exportedAt string) {
	t.Helper()
	at := ""
	if exportedAt != "" {
		at = `, "exported_at": "` + exportedAt + `"`
	}
	writeFiles(t, out, map[string]string{"weights.bin": "old", ManifestFile: `{"written_by": "ftune", "format": "test", "files": ["weights.bin"]` + at + "}\n"})
	rec := time.Now().Add(-time.Hour)
	file := rec.Add(-24 * time.Hour)
	if err := os.Chtimes(filepath.Join(out, ManifestFile), rec, rec); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(out, "weights.bin"), file, file); err != nil {
		t.Fatal(err)
	}
}

// The audit's cases: a record of an earlier ftune holds no hashes, and
// was trusted by time: the user's own file moved into the folder (mv
// keeps its old time) was deleted by the next export, the note saying no
// file changed, and a record whose exported_at said 2099 hid every edit.
// Such a record proves nothing: the folder is refused, saying why, and
// with force moved aside and kept.
func TestFolderExportOlderRecords(t *testing.T) {
	for _, exportedAt := range []string{"", "2099-01-01T00:00:00Z"} {
		out := filepath.Join(t.TempDir(), "out")
		writeOldRecord(t, out, exportedAt)
		_, err := writeFolder(out, "test", "", false, fillWeights("new"))
		if err == nil || !strings.Contains(err.Error(), "no content hashes") || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("exported_at %q: an older export without hashes: err = %v, want a refusal saying the record holds no hashes, and --force", exportedAt, err)
		}
		if mustRead(t, filepath.Join(out, "weights.bin")) != "old" {
			t.Fatal("the refused export changed the folder")
		}
		notes, err := writeFolder(out, "test", "", true, fillWeights("new"))
		if err != nil {
			t.Fatal(err)
		}
		checkExport(t, out, "new")
		aside, _ := filepath.Glob(out + ".replaced-*")
		if len(aside) != 1 || mustRead(t, filepath.Join(aside[0], "weights.bin")) != "old" || !strings.Contains(strings.Join(notes, "\n"), aside[0]) {
			t.Fatalf("--force: the older export is at %v; notes %q", aside, notes)
		}
	}
}

// A record with hashes whose exported_at lies (2099) hides no edit: times
// in the record decide nothing.
func TestFolderExportRecordTimeDecidesNothing(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, err := writeFolder(out, "test", "", false, fillWeights("old")); err != nil {
		t.Fatal(err)
	}
	rec := readRecord(t, out)
	rec.ExportedAt = "2099-01-01T00:00:00Z"
	b, _ := json.Marshal(rec)
	writeFiles(t, out, map[string]string{ManifestFile: string(b), "weights.bin": "edited"})
	if _, err := writeFolder(out, "test", "", false, fillWeights("new")); !errors.Is(err, ErrEdited) {
		t.Fatalf("an edited export whose record says 2099: err = %v, want ErrEdited", err)
	}
	if mustRead(t, filepath.Join(out, "weights.bin")) != "edited" {
		t.Fatal("the edit is lost")
	}
}

// Files the user added to an earlier export (not in its record) are not
// deleted by the swap: refused naming them, or with force kept.
func TestFolderExportKeepsAddedFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, err := writeFolder(out, "test", "", false, fillWeights("old")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, out, map[string]string{"eval.csv": "mine"})
	if _, err := writeFolder(out, "test", "", false, fillWeights("new")); !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "eval.csv") {
		t.Fatalf("an export with a file added: err = %v, want ErrNotOurs naming eval.csv", err)
	}
	if mustRead(t, filepath.Join(out, "eval.csv")) != "mine" {
		t.Fatal("the added file is gone")
	}
	if _, err := writeFolder(out, "test", "", true, fillWeights("new")); err != nil {
		t.Fatal(err)
	}
	aside, _ := filepath.Glob(out + ".replaced-*")
	if len(aside) != 1 || mustRead(t, filepath.Join(aside[0], "eval.csv")) != "mine" {
		t.Fatalf("--force: the added file is not kept (%v)", aside)
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
