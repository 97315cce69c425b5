package export

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// ManifestFile marks a folder that ftune wrote and lists its files. Only a
// folder whose every file the manifest lists is ever deleted by an export
// (to be replaced); any other non-empty folder is the user's.
const ManifestFile = "ftune_export.json"

// manifest is ManifestFile's content.
type manifest struct {
	WrittenBy string   `json:"written_by"` // "ftune"
	Format    string   `json:"format"`     // "merged"
	Files     []string `json:"files"`      // every other file ftune wrote there
}

// ErrNotOurs is wrapped when the output (a folder, or a file) holds what
// ftune did not write and Force is off.
var ErrNotOurs = errors.New("the output holds files that no ftune export wrote")

// ErrOtherKind is wrapped when the output is a file ftune wrote but of
// another kind than the one being written (an importance matrix where a
// model goes): ftune wrote it, but the user may still want it, and Force
// is off.
var ErrOtherKind = errors.New("another kind of file ftune writes")

// writeManifest lists dir's files (written by this export) in ManifestFile.
func writeManifest(dir, format string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	m := manifest{WrittenBy: "ftune", Format: format}
	for _, e := range ents {
		m.Files = append(m.Files, e.Name())
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return fsutil.WriteFileAtomic(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644)
}

// foreignFiles lists the entries of dir that ftune's manifest there does
// not account for (all of them when there is no manifest); nil for an
// absent or empty folder.
func foreignFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var m manifest
	if b, err := os.ReadFile(filepath.Join(dir, ManifestFile)); err == nil {
		_ = json.Unmarshal(b, &m) // an unreadable manifest accounts for nothing
	}
	var out []string
	for _, e := range ents {
		if e.Name() == ManifestFile && m.WrittenBy == "ftune" || m.WrittenBy == "ftune" && slices.Contains(m.Files, e.Name()) && !e.IsDir() {
			continue
		}
		out = append(out, e.Name())
	}
	return out, nil
}

// checkReplaceable refuses an output folder holding files ftune did not
// write, unless force (the folder is then moved aside, not deleted).
func checkReplaceable(dir string, force bool) (foreign bool, err error) {
	files, err := foreignFiles(dir)
	if err != nil || len(files) == 0 {
		return false, err
	}
	if force {
		return true, nil
	}
	return true, fmt.Errorf("export: %s: %w (%s); refusing to replace it: choose another --out, or pass --force to move the folder aside (kept, not deleted)",
		dir, ErrNotOurs, listSome(files))
}

// writeFolder writes an export folder (merged, peft) so that outDir is
// either what was there or the complete export, and nothing the user put
// there is lost: fill writes the files into a temporary folder beside
// outDir, which gets a ManifestFile listing them and is swapped into place
// (an atomic exchange on Linux). An existing outDir is deleted only when
// its manifest accounts for every file in it (an earlier export); a folder
// holding anything else is refused (ErrNotOurs), or with force moved aside
// and kept. The notes say what else happened (temporary folders of killed
// exports removed, a folder moved aside).
func writeFolder(outDir, format string, force bool, fill func(tmp string) error) (notes []string, err error) {
	foreign, err := checkReplaceable(outDir, force)
	if err != nil {
		return nil, err
	}
	parent := filepath.Dir(outDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	leftovers, err := removeKilledTemps(outDir)
	if err != nil {
		return nil, err
	}
	if len(leftovers) > 0 {
		notes = append(notes, fmt.Sprintf("removed %d temporary folder(s) of killed exports beside %s: %s", len(leftovers), outDir, strings.Join(leftovers, ", ")))
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(outDir)+".tmp-")
	if err != nil {
		return notes, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	// MkdirTemp makes the folder private (0700); a model folder is not.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return notes, fmt.Errorf("export: %w", err)
	}
	if err := fill(tmp); err != nil {
		return notes, err
	}
	if err := writeManifest(tmp, format); err != nil {
		return notes, err
	}
	kept, err := install(tmp, outDir, foreign)
	if err != nil {
		return notes, err
	}
	if kept != "" {
		notes = append(notes, fmt.Sprintf("--force: the previous %s held files ftune did not write; it was moved to %s (nothing deleted)", outDir, kept))
	}
	return notes, nil
}

// FileRule says how ReplaceFile treats what is at its path.
type FileRule struct {
	// Ours returns nil for a file that an earlier write of the same kind
	// left (replaced without force), else why it is not (wrapping
	// ErrNotOurs or ErrOtherKind).
	Ours func(path string) error
	// Prefix starts the error messages ("imatrix"; "" is "export"), and
	// Example is the file name suggested when the path is a folder
	// ("imatrix.gguf"; "" is "model.gguf").
	Prefix, Example string
}

// CheckFile is ReplaceFile's test of what is at path, for a command that
// works long before it writes (ftune imatrix) to refuse at once: err says
// why path may not be written, and aside is set when force will move a
// file there aside.
func CheckFile(path string, force bool, rule FileRule) (aside bool, err error) {
	prefix, example := cmp.Or(rule.Prefix, "export"), cmp.Or(rule.Example, "model.gguf")
	fi, err := os.Lstat(path)
	why := fmt.Errorf("%w (the file there is not a regular file)", ErrNotOurs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", prefix, err)
	case fi.IsDir():
		return false, fmt.Errorf("%s: %s is a folder, and this writes one file: name the file (for example %s)", prefix, path, filepath.Join(path, example))
	case fi.Mode().IsRegular():
		why = rule.Ours(path)
	}
	if why != nil && !force {
		return false, fmt.Errorf("%s: %s: %w; refusing to replace it: choose another --out, or pass --force to move it aside (kept, not deleted)", prefix, path, why)
	}
	return why != nil, nil
}

// ReplaceFile runs write, which puts a whole file at path atomically (a
// GGUF model, LoRA or importance matrix), under the rule merged folders
// follow: a path that does not exist, or a file that rule.Ours accepts
// (an earlier file of the same kind ftune wrote), is written over; a
// folder is refused (the format writes one file); any other file is
// refused with Ours' reason, unless force: it is then moved aside, kept
// beside path under a new name (returned), and put back if write fails.
// Temporary files that killed writes of path left beside it are removed
// first (RemoveKilledTempFiles), which the notes say.
func ReplaceFile(path string, force bool, rule FileRule, write func() error) (kept string, notes []string, err error) {
	aside, err := CheckFile(path, force, rule)
	if err != nil {
		return "", nil, err
	}
	leftovers, err := RemoveKilledTempFiles(path)
	if err != nil {
		return "", nil, err
	}
	if len(leftovers) > 0 {
		notes = append(notes, fmt.Sprintf("removed %d temporary file(s) of killed writes beside %s: %s", len(leftovers), path, strings.Join(leftovers, ", ")))
	}
	if !aside {
		return "", notes, write()
	}
	prefix := cmp.Or(rule.Prefix, "export")
	kept = fmt.Sprintf("%s.replaced-%s", path, time.Now().Format("20060102-150405"))
	if err := os.Rename(path, kept); err != nil {
		return "", notes, fmt.Errorf("%s: move %s aside: %w", prefix, path, err)
	}
	if err := write(); err != nil {
		if rerr := os.Rename(kept, path); rerr != nil {
			return "", notes, fmt.Errorf("%w (and the previous file stays at %s: %v)", err, kept, rerr)
		}
		return "", notes, err
	}
	return kept, notes, nil
}

// RemoveKilledTempFiles deletes the temporary files that earlier writes
// of path (fsutil.WriteAtomic: a GGUF model, LoRA or imatrix) left beside
// it when they were killed mid-write, which no later write would ever
// reuse (gigabytes for a model), and returns their names. A file goes
// only when all of these say it is such a leftover, never a user's file:
// its name is ".<name>.tmp-<digits>" (the name WriteAtomic gives, as
// removeKilledTemps recognises folders), it is a regular file, it is
// empty or starts with the GGUF magic, and no live process holds it open
// (a write under way at the same time keeps its file). Where that last
// cannot be told (no /proc), nothing is removed.
func RemoveKilledTempFiles(path string) ([]string, error) {
	parent, entries, err := tempSiblings(path)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if !startsAsGGUF(p) {
			continue
		}
		if open, known := heldOpen(p); open || !known {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("export: remove the leftover %s: %w", p, err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// tempSiblings lists the entries beside path named as atomic writes name
// their temporaries (".<name>.tmp-<digits>": fsutil.WriteAtomic's files,
// MergedHFWith's folders), and the folder they are in. A missing folder
// has none.
func tempSiblings(path string) (string, []fs.DirEntry, error) {
	parent, base := filepath.Split(path)
	if parent == "" {
		parent = "."
	}
	pattern := regexp.MustCompile(`^\.` + regexp.QuoteMeta(base) + `\.tmp-\d+$`)
	entries, err := os.ReadDir(parent)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return parent, nil, nil
		}
		return parent, nil, fmt.Errorf("export: %w", err)
	}
	var out []fs.DirEntry
	for _, e := range entries {
		if pattern.MatchString(e.Name()) {
			out = append(out, e)
		}
	}
	return parent, out, nil
}

// startsAsGGUF reports whether the file at p is empty (a write killed
// before its first buffer reached the disk) or starts with the GGUF magic.
func startsAsGGUF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	n, err := io.ReadFull(f, magic[:])
	return n == 0 && err == io.EOF || err == nil && string(magic[:]) == "GGUF"
}

func listSome(xs []string) string {
	if len(xs) > 5 {
		return fmt.Sprintf("%q and %d more", xs[:5], len(xs)-5)
	}
	return fmt.Sprintf("%q", xs)
}

// install puts the finished folder tmp at dir. An existing dir is swapped
// out atomically where the system can (Linux), else moved aside then
// replaced; the old folder is then deleted when ftune wrote all of it, or
// kept beside dir (its new path returned) when it held the user's files.
func install(tmp, dir string, keepOld bool) (kept string, err error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return "", fmt.Errorf("export: %w", err)
		}
		return "", nil
	}
	old := tmp
	if err := exchange(tmp, dir); err != nil {
		// No atomic exchange: move the old folder aside, then the new in.
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return "", fmt.Errorf("export: move the previous %s aside: %w", dir, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			_ = os.Rename(old, dir)
			return "", fmt.Errorf("export: %w", err)
		}
	}
	if keepOld {
		kept = fmt.Sprintf("%s.replaced-%s", dir, time.Now().Format("20060102-150405"))
		if err := os.Rename(old, kept); err != nil {
			return "", fmt.Errorf("export: the previous %s is at %s: %w", dir, old, err)
		}
		return kept, nil
	}
	return "", os.RemoveAll(old)
}

// removeKilledTemps deletes the temporary folders that earlier exports to
// outDir left beside it when they were killed mid-write
// (".<name>.tmp-<digits>", the names MergedHFWith makes, and only those),
// and returns their names. A live export to the same folder at the same
// time would race for the swap anyway; its temporary folder goes too.
func removeKilledTemps(outDir string) ([]string, error) {
	parent, entries, err := tempSiblings(outDir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := os.RemoveAll(filepath.Join(parent, e.Name())); err != nil {
			return removed, fmt.Errorf("export: remove the leftover %s: %w", e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}
