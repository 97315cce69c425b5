package export

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// ErrNotOurs is wrapped when the output (a folder, or a file) holds what
// ftune did not write and Force is off.
var ErrNotOurs = errors.New("the output holds files that no ftune export wrote")

// ErrOtherKind is wrapped when the output is a file ftune wrote but of
// another kind than the one being written (an importance matrix where a
// model goes): ftune wrote it, but the user may still want it, and Force
// is off.
var ErrOtherKind = errors.New("another kind of file ftune writes")

// ErrEdited is wrapped when a folder an export wrote holds a file changed
// since (its content no longer the one the record holds: the user's
// edit) and Force is off.
var ErrEdited = errors.New("changed since ftune exported it")

// ErrUnverifiable is wrapped when a folder an export wrote has a record
// of an earlier ftune, which holds no content hashes: whether its files
// are still the ones it wrote cannot be told (no time can tell it), so it
// is the user's until force moves it aside.
var ErrUnverifiable = errors.New("the folder's export record cannot prove its files are ftune's")

// checkReplaceable refuses an output folder that an export of format
// may not replace (folderProblem), unless force (install then moves the
// folder aside, not deleting it).
func checkReplaceable(dir, format string, force bool) error {
	_, why, err := folderProblem(dir, format)
	if err != nil || why == nil || force {
		return err
	}
	return fmt.Errorf("export: %s: %w; refusing to replace it: choose another --out, or pass --force to move the folder aside (kept, not deleted)", dir, why)
}

// writeFolder writes an export folder (merged, peft) of format, made from
// from (recorded, and named when a later export replaces it), so that
// outDir is either what was there or the complete export, and nothing the
// user put there is lost: fill writes the files into a temporary folder
// beside outDir (locked and marked as ftune's partial output while it is
// written, then given a ManifestFile recording them), which is swapped
// into place (an atomic exchange on Linux and macOS). An existing outDir
// is deleted only when it is an earlier export of the same format whose
// every file its record lists, unchanged (the notes say what it was); a
// folder holding anything else, an export of another format, files the
// user changed since, or a record without hashes (which proves nothing),
// is refused (ErrNotOurs, ErrOtherKind, ErrEdited, ErrUnverifiable), or
// with force moved aside and kept. The notes say what else happened
// (temporary folders of killed exports of outDir removed or kept, what is
// at other outputs' temporary names, a folder moved aside).
func writeFolder(outDir, format, from string, force bool, fill func(tmp string) error) (notes []string, err error) {
	outDir = filepath.Clean(outDir)
	if err := checkReplaceable(outDir, format, force); err != nil {
		return nil, err // at once, before the export's minutes of work
	}
	notes, err = clearLeftovers(outDir)
	if err != nil {
		return notes, err
	}
	more, err := fillFolder(outDir, format, from, force, fill)
	return append(notes, more...), err
}

// fillFolder is writeFolder once outDir was checked and its leftovers
// cleared (clearLeftovers; MergedHFWith does both before its free-space
// check).
func fillFolder(outDir, format, from string, force bool, fill func(tmp string) error) (notes []string, err error) {
	if err := os.MkdirAll(filepath.Dir(outDir), 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tmp, release, err := startTemp(outDir)
	if err != nil {
		return nil, err
	}
	defer release()
	// Only this export's files are ever at tmp: install never moves the
	// previous folder to it.
	defer os.RemoveAll(tmp)
	if err := fill(tmp); err != nil {
		return nil, err
	}
	if err := sealTemp(tmp, format, from); err != nil {
		return nil, err
	}
	done, err := install(tmp, outDir, format, force)
	if err != nil {
		return nil, err
	}
	switch {
	case done.kept != "":
		notes = append(notes, fmt.Sprintf("--force: the previous %s was no earlier export of this format to replace: %v; it was moved to %s (nothing deleted)", outDir, done.why, done.kept))
	case done.prev != nil:
		notes = append(notes, fmt.Sprintf("replaced %s (%s)", outDir, done.prev))
	}
	return notes, nil
}

// clearLeftovers removes what killed exports of outDir left beside it
// (removeKilledTemps: their exact temporary names only), and names, once,
// what is at the temporary names of other outputs in its folder
// (othersTemps: nothing of those is removed). A folder export runs it
// once, before its free-space check, which such a leftover (a model's
// size) could fail.
func clearLeftovers(outDir string) (notes []string, err error) {
	notes, err = removeKilledTemps(outDir)
	if err != nil {
		return notes, err
	}
	return append(notes, othersTemps(outDir)...), nil
}

// partialMarker is the first file of an export's temporary folder and
// leaves it once the manifest is written: a folder at a temporary name
// holding it is ftune's unfinished output, which removeKilledTemps (an
// export to the same output) may delete whatever else it holds, once no
// live export holds its lock.
const partialMarker = ".ftune_export_partial"

// startTemp makes the temporary folder an export of outDir is written in
// (".<name>.tmp-<digits>", beside outDir), locks it for as long as the
// export runs (release unlocks it: a kill does too), and marks it as
// ftune's. The lock comes before the mark, so a marked folder whose lock
// is free is one whose export is gone (removeKilledTemps leaves a held
// one: an export to the same output running at the same time).
func startTemp(outDir string) (tmp string, release func(), err error) {
	tmp, err = os.MkdirTemp(filepath.Dir(outDir), "."+filepath.Base(outDir)+".tmp-")
	if err != nil {
		return "", nil, fmt.Errorf("export: %w", err)
	}
	release, err = holdFolder(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("export: %w", err)
	}
	fail := func(err error) (string, func(), error) {
		os.RemoveAll(tmp)
		release()
		return "", nil, fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, partialMarker), []byte("an unfinished ftune export; deleted by the next export to the same output once this one is gone\n"), 0o644); err != nil {
		return fail(err)
	}
	// MkdirTemp makes the folder private (0700); a model folder is not.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(err)
	}
	return tmp, release, nil
}

// sealTemp writes the record of the filled folder tmp, then removes its
// partial marker: at every instant one of the two says the folder is
// ftune's.
func sealTemp(tmp, format, from string) error {
	if err := writeManifest(tmp, format, from); err != nil {
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

// installed says what install did with the folder it found at dir: kept
// it at a name of its own (kept, and why it was not replaced), or deleted
// it, an earlier export (prev; nil when there was none).
type installed struct {
	kept string
	why  error
	prev *previous
}

// install puts the finished folder tmp at dir, under force's rule, and
// says what became of the previous folder.
//
// No kill at any instant loses the user's folder, and none leaves it at a
// temporary name (which removeKilledTemps visits): a folder that may not
// be replaced (folderProblem) goes straight to its kept name
// (dir.replaced-<time>) by the swap itself, and only an earlier export of
// ftune's goes to a temporary name, to be deleted. dir is checked again
// here, since the user may have added or edited files during the export's
// minutes, and the folder swapped out once more before it is deleted.
func install(tmp, dir, format string, force bool) (done installed, err error) {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, dir); err != nil {
			return done, fmt.Errorf("export: %w", err)
		}
		return done, nil
	}
	prev, why, err := folderProblem(dir, format)
	switch {
	case err != nil:
		return done, err
	case why != nil && !force:
		return done, fmt.Errorf("export: %s: %w; refusing to replace it: choose another --out, or pass --force to move the folder aside (kept, not deleted)", dir, why)
	case why != nil:
		if done.kept, err = freeName(dir); err != nil {
			return installed{}, err
		}
		if err := swapIn(tmp, dir, done.kept); err != nil {
			return installed{}, err
		}
		done.why = why
		return done, nil
	}
	old, err := freeTempName(dir)
	if err != nil {
		return done, err
	}
	if err := swapIn(tmp, dir, old); err != nil {
		return done, err
	}
	if stopInstall("swapped") {
		return done, errStopped
	}
	if _, why, cerr := folderProblem(old, format); cerr != nil || why != nil {
		// Files the user added or edited between the check and the
		// swap (or a folder that cannot be read): kept.
		kept, err := freeName(dir)
		if err != nil {
			return done, fmt.Errorf("%w (the previous %s is at %s)", err, dir, old)
		}
		if err := os.Rename(old, kept); err != nil {
			return done, fmt.Errorf("export: the previous %s is at %s: %w", dir, old, err)
		}
		done.kept, done.why = kept, cmp.Or(why, cerr)
		return done, nil
	}
	if err := os.RemoveAll(old); err != nil {
		return done, fmt.Errorf("export: remove the previous %s (now at %s): %w", dir, old, err)
	}
	done.prev = prev
	return done, nil
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
// notes saying what it did. A folder that a live export holds (its lock,
// startTemp) is left alone: an export to the same folder running at the
// same time. Where locks cannot be read (holdFolder), none is taken to be
// held. Any other such folder is deleted only when it is provably
// ftune's: empty, marked as a partial export (partialMarker), or an export
// whose record accounts for every file, unchanged. Any other (the user's
// folder, left there by an older ftune killed while swapping folders, or
// an export the user edited) is moved to outDir.replaced-<time> and kept.
func removeKilledTemps(outDir string) (notes []string, err error) {
	parent, entries, err := fsutil.TempSiblings(outDir)
	if err != nil {
		return nil, err
	}
	var removed, kept, busy []string
	defer func() { // what was done is said even when a later folder fails
		if len(removed) > 0 {
			notes = append(notes, fmt.Sprintf("removed %d temporary folder(s) of killed exports beside %s: %s", len(removed), outDir, strings.Join(removed, ", ")))
		}
		if len(kept) > 0 {
			notes = append(notes, fmt.Sprintf("kept %d folder(s) found at temporary names beside %s, which hold files ftune did not write, or that changed since it wrote them (a folder that an export killed while swapping moved there): %s; nothing deleted", len(kept), outDir, strings.Join(kept, ", ")))
		}
		if len(busy) > 0 {
			notes = append(notes, fmt.Sprintf("left %d temporary folder(s) beside %s that a running export is writing: %s", len(busy), outDir, strings.Join(busy, ", ")))
		}
	}()
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if held, known := folderHeld(p); held && known {
			busy = append(busy, e.Name())
			continue
		}
		_, mark := os.Lstat(filepath.Join(p, partialMarker))
		_, why, err := folderProblem(p, "")
		if err != nil {
			return nil, err
		}
		if mark == nil || why == nil {
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
			return nil, fmt.Errorf("export: %s: %v, and it could not be moved to a name of its own: %w", p, why, err)
		}
		kept = append(kept, fmt.Sprintf("%s (now %s)", e.Name(), to))
	}
	return nil, nil
}
