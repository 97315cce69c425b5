package export

import (
	"encoding/json"
	"errors"
	"fmt"
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

// ReplaceFile runs write, which puts a whole file at path atomically (a
// GGUF model or LoRA), under the rule merged folders follow: a path that
// does not exist, or a file ours says ftune wrote, is written over; a
// folder is refused (the format writes one file); any other file is the
// user's and is refused, unless force: it is then moved aside, kept beside
// path under a new name (returned), and put back if write fails.
func ReplaceFile(path string, force bool, ours func(path string) bool, write func() error) (kept string, err error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", write()
	case err != nil:
		return "", fmt.Errorf("export: %w", err)
	case fi.IsDir():
		return "", fmt.Errorf("export: %s is a folder, and this format writes one file: name the file (for example %s)", path, filepath.Join(path, "model.gguf"))
	case fi.Mode().IsRegular() && ours(path):
		return "", write()
	case !force:
		return "", fmt.Errorf("export: %s: %w (the file there is not a GGUF file ftune wrote); refusing to replace it: choose another --out, or pass --force to move it aside (kept, not deleted)", path, ErrNotOurs)
	}
	kept = fmt.Sprintf("%s.replaced-%s", path, time.Now().Format("20060102-150405"))
	if err := os.Rename(path, kept); err != nil {
		return "", fmt.Errorf("export: move %s aside: %w", path, err)
	}
	if err := write(); err != nil {
		if rerr := os.Rename(kept, path); rerr != nil {
			return "", fmt.Errorf("%w (and the previous file stays at %s: %v)", err, kept, rerr)
		}
		return "", err
	}
	return kept, nil
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
	parent, base := filepath.Split(outDir)
	if parent == "" {
		parent = "."
	}
	pattern := regexp.MustCompile(`^\.` + regexp.QuoteMeta(base) + `\.tmp-\d+$`)
	entries, err := os.ReadDir(parent)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("export: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if !e.IsDir() || !pattern.MatchString(e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(parent, e.Name())); err != nil {
			return removed, fmt.Errorf("export: remove the leftover %s: %w", e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}
