package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
		if e.Name() != partialMarker {
			m.Files = append(m.Files, e.Name())
		}
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
// outDir (marked as ftune's partial output, then given a ManifestFile
// listing them), which is swapped into place (an atomic exchange on
// Linux and macOS). An existing outDir is deleted only when its manifest
// accounts for every file in it (an earlier export); a folder holding
// anything else is refused (ErrNotOurs), or with force moved aside and
// kept. The notes say what else happened (temporary folders of killed
// exports removed or kept, a folder moved aside).
func writeFolder(outDir, format string, force bool, fill func(tmp string) error) (notes []string, err error) {
	if _, err := checkReplaceable(outDir, force); err != nil {
		return nil, err // at once, before the export's minutes of work
	}
	parent := filepath.Dir(outDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	notes, err = removeKilledTemps(outDir)
	if err != nil {
		return notes, err
	}
	tmp, err := startTemp(outDir)
	if err != nil {
		return notes, err
	}
	// Only this export's files are ever at tmp: install never moves the
	// previous folder to it.
	defer os.RemoveAll(tmp)
	if err := fill(tmp); err != nil {
		return notes, err
	}
	if err := sealTemp(tmp, format); err != nil {
		return notes, err
	}
	kept, err := install(tmp, outDir, force)
	if err != nil {
		return notes, err
	}
	if kept != "" {
		notes = append(notes, fmt.Sprintf("--force: the previous %s held files ftune did not write; it was moved to %s (nothing deleted)", outDir, kept))
	}
	return notes, nil
}

// partialMarker is the first file of an export's temporary folder and
// leaves it once the manifest is written: a folder at a temporary name
// holding it is ftune's unfinished output, which removeKilledTemps may
// delete whatever else it holds.
const partialMarker = ".ftune_export_partial"

// startTemp makes the temporary folder an export of outDir is written in
// (".<name>.tmp-<digits>", beside outDir) and marks it as ftune's.
func startTemp(outDir string) (string, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(outDir), "."+filepath.Base(outDir)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, partialMarker), []byte("an unfinished ftune export; deleted by the next export to "+outDir+"\n"), 0o644); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("export: %w", err)
	}
	// MkdirTemp makes the folder private (0700); a model folder is not.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("export: %w", err)
	}
	return tmp, nil
}

// sealTemp writes the manifest of the filled folder tmp, then removes its
// partial marker: at every instant one of the two says the folder is
// ftune's.
func sealTemp(tmp, format string) error {
	if err := writeManifest(tmp, format); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(tmp, partialMarker)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func listSome(xs []string) string {
	if len(xs) > 5 {
		return fmt.Sprintf("%q and %d more", xs[:5], len(xs)-5)
	}
	return fmt.Sprintf("%q", xs)
}

// install puts the finished folder tmp at dir, under force's rule, and
// returns where the previous folder was kept (empty when there was none,
// or ftune wrote all of it and it was deleted).
//
// No kill at any instant loses the user's folder, and none leaves it at a
// temporary name (which removeKilledTemps visits): a folder holding files
// ftune did not write goes straight to its kept name (dir.replaced-<time>)
// by the swap itself, and only an earlier export of ftune's goes to a
// temporary name, to be deleted. dir is checked again here, since the
// user may have added files during the export's minutes, and the folder
// swapped out once more before it is deleted.
func install(tmp, dir string, force bool) (kept string, err error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return "", fmt.Errorf("export: %w", err)
		}
		return "", nil
	}
	foreign, err := checkReplaceable(dir, force)
	if err != nil {
		return "", err
	}
	if foreign {
		if kept, err = freeName(dir); err != nil {
			return "", err
		}
		if err := swapIn(tmp, dir, kept); err != nil {
			return "", err
		}
		return kept, nil
	}
	old, err := freeTempName(dir)
	if err != nil {
		return "", err
	}
	if err := swapIn(tmp, dir, old); err != nil {
		return "", err
	}
	if stopInstall("swapped") {
		return "", errStopped
	}
	if files, err := foreignFiles(old); err != nil || len(files) > 0 {
		// Files the user added between the check and the swap: kept.
		if kept, err = freeName(dir); err != nil {
			return "", fmt.Errorf("%w (the previous %s is at %s)", err, dir, old)
		}
		if err := os.Rename(old, kept); err != nil {
			return "", fmt.Errorf("export: the previous %s is at %s: %w", dir, old, err)
		}
		return kept, nil
	}
	if err := os.RemoveAll(old); err != nil {
		return "", fmt.Errorf("export: remove the previous %s (now at %s): %w", dir, old, err)
	}
	return "", nil
}

// swapIn puts the folder at next in dir's place and dir's folder at
// aside, a free name. next is first renamed to aside and the two swapped
// atomically (Linux, macOS), so dir is at every instant the old or the
// new folder and the old one never has any name but dir and aside.
// Without an atomic exchange (another system, or a file system that has
// none), dir is moved to aside and next into its place: dir is missing
// between the two renames, and a failure puts it back.
func swapIn(next, dir, aside string) error {
	if err := os.Rename(next, aside); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if stopInstall("staged") {
		return errStopped
	}
	if exchangeFolders(aside, dir) == nil {
		return nil
	}
	if err := os.Rename(aside, next); err != nil {
		return fmt.Errorf("export: the new folder is at %s: %w", aside, err)
	}
	if stopInstall("unstaged") {
		return errStopped
	}
	if err := os.Rename(dir, aside); err != nil {
		return fmt.Errorf("export: move the previous %s aside: %w", dir, err)
	}
	if stopInstall("moved aside") {
		return errStopped
	}
	if err := os.Rename(next, dir); err != nil {
		if rerr := os.Rename(aside, dir); rerr != nil {
			return fmt.Errorf("export: %w (and the previous %s stays at %s: %v)", err, dir, aside, rerr)
		}
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// exchangeFolders is exchange, which tests replace to take the other way.
var exchangeFolders = exchange

// stopInstall says no but in tests, which stop install at a named step as
// a kill would there (returning errStopped, undoing nothing), then check
// what the next export finds.
var stopInstall = func(step string) bool { return false }

var errStopped = errors.New("export: stopped (test)")

// freeName returns a name to keep the previous path at, beside it:
// path.replaced-<time>, with -2, -3... when that is taken (a rename would
// write over a file there, which is someone's too).
func freeName(path string) (string, error) {
	base := fmt.Sprintf("%s.replaced-%s", path, time.Now().Format("20060102-150405"))
	for i := 1; i <= 1000; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		} else if err != nil {
			return "", fmt.Errorf("export: %w", err)
		}
	}
	return "", fmt.Errorf("export: no free name to keep %s at (%s-<n> all taken)", path, base)
}

// freeTempName returns an unused temporary name beside dir
// (".<name>.tmp-<digits>", which removeKilledTemps visits).
func freeTempName(dir string) (string, error) {
	p, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	return p, os.Remove(p)
}

// removeKilledTemps clears the temporary folders that earlier exports to
// outDir left beside it when they were killed (".<name>.tmp-<digits>",
// the names startTemp and install make, and only those), and returns
// notes saying what it did. Such a folder is deleted only when it is
// provably ftune's: empty, marked as a partial export (partialMarker), or
// an export whose manifest accounts for every file. Any other (the user's
// folder, left there by an older ftune killed while swapping folders) is
// moved to outDir.replaced-<time> and kept. A live export to the same
// folder at the same time would race for the swap anyway; its temporary
// folder goes too.
func removeKilledTemps(outDir string) (notes []string, err error) {
	parent, entries, err := fsutil.TempSiblings(outDir)
	if err != nil {
		return nil, err
	}
	var removed, kept []string
	defer func() { // what was done is said even when a later folder fails
		if len(removed) > 0 {
			notes = append(notes, fmt.Sprintf("removed %d temporary folder(s) of killed exports beside %s: %s", len(removed), outDir, strings.Join(removed, ", ")))
		}
		if len(kept) > 0 {
			notes = append(notes, fmt.Sprintf("kept %d folder(s) found at temporary names beside %s, which hold files ftune did not write (a folder that an export killed while swapping moved there): %s; nothing deleted", len(kept), outDir, strings.Join(kept, ", ")))
		}
	}()
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(parent, e.Name())
		_, mark := os.Lstat(filepath.Join(p, partialMarker))
		files, err := foreignFiles(p)
		if err != nil {
			return nil, err
		}
		if mark == nil || len(files) == 0 {
			if err := os.RemoveAll(p); err != nil {
				return nil, fmt.Errorf("export: remove the leftover %s: %w", p, err)
			}
			removed = append(removed, e.Name())
			continue
		}
		to, err := freeName(outDir)
		if err == nil {
			err = os.Rename(p, to)
		}
		if err != nil {
			return nil, fmt.Errorf("export: %s holds files ftune did not write (%s), and could not be moved to a name of its own: %w", p, listSome(files), err)
		}
		kept = append(kept, fmt.Sprintf("%s (now %s)", e.Name(), to))
	}
	return nil, nil
}
