package export

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// FileRule says how ReplaceFile treats what is at its path.
type FileRule struct {
	// Ours returns nil for a file that an earlier write of the same kind
	// left (replaced without force), else why it is not (wrapping
	// ErrNotOurs or ErrOtherKind).
	Ours func(path string) error
	// Describe says what the file at path is, for the note that says an
	// earlier file was replaced ("a GGUF model of tiny-base in Q8_0,
	// written ..."); nil says "an earlier file of this kind ftune wrote"
	// and its time.
	Describe func(path string) string
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
// GGUF model, LoRA or importance matrix: a temporary file renamed over
// path, never path opened and written in place), under the rule merged
// folders follow: a path that does not exist, or a file that rule.Ours
// accepts (an earlier file of the same kind ftune wrote), is written over;
// a folder is refused (the format writes one file); any other file is
// refused with Ours' reason, unless force: it is then kept beside path
// under a new name (returned; never one that is taken).
//
// With force, the file is kept by a second name (a hard link) made before
// write, so path holds the previous file until write's rename puts the new
// one there: at no instant is path missing, and a write that fails or is
// killed leaves the previous file at path (a failure also removes the
// second name; a kill leaves it, naming the same file). Where the file
// system has no hard links (or path is no regular file: a symbolic link,
// a pipe), it is moved to its kept name before write instead, and moved
// back if write fails; path is then missing while write runs.
// Folders missing above path are made, as folder exports make theirs.
// Temporary files that killed writes of path left beside it are removed
// first (RemoveKilledTempFiles: their exact names only), which the notes
// say; what is at the temporary names of other outputs in its folder is
// named in the notes, not removed (othersTemps). An earlier file replaced without force is said too
// ("replaced <path> (<rule.Describe>)").
func ReplaceFile(path string, force bool, rule FileRule, write func() error) (kept string, notes []string, err error) {
	path = filepath.Clean(path) // "m.gguf/" names m.gguf, not a folder's contents
	aside, err := CheckFile(path, force, rule)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", nil, fmt.Errorf("%s: %w", cmp.Or(rule.Prefix, "export"), err)
	}
	leftovers, err := RemoveKilledTempFiles(path)
	if err != nil {
		return "", nil, err
	}
	if len(leftovers) > 0 {
		notes = append(notes, fmt.Sprintf("removed %d temporary file(s) of killed writes beside %s: %s", len(leftovers), path, strings.Join(leftovers, ", ")))
	}
	notes = append(notes, othersTemps(path)...)
	if !aside {
		replaced := ""
		if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
			replaced = describeFile(path, fi, rule)
		}
		if err := write(); err != nil {
			return "", notes, err
		}
		if replaced != "" {
			notes = append(notes, fmt.Sprintf("replaced %s (%s)", path, replaced))
		}
		return "", notes, nil
	}
	prefix := cmp.Or(rule.Prefix, "export")
	stale, err := removeStaleSecondNames(path)
	if err != nil {
		return "", notes, fmt.Errorf("%s: %w", prefix, err)
	}
	if len(stale) > 0 {
		notes = append(notes, fmt.Sprintf("removed %s: second name(s) of %s that killed forced writes left (the file stays at %s, and is kept at the new name below)", strings.Join(stale, ", "), path, path))
	}
	// A name of its own (never a temporary one, which the next write's
	// cleanup visits).
	if kept, err = freeName(path); err != nil {
		return "", notes, err
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || linkAside(path, kept) != nil {
		// No hard links here (or no regular file, whose content write
		// could not replace in place anyway): moved, and path is missing
		// during write. A kill then leaves what was there at kept.
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
	werr := write()
	pi, perr := os.Lstat(path)
	ki, kerr := os.Lstat(kept)
	switch {
	case kerr != nil: // removed by someone else meanwhile
		return "", notes, fmt.Errorf("%s: %s, the second name of the previous %s, is gone: %w", prefix, kept, path, cmp.Or(werr, kerr))
	case perr != nil: // not write's doing: the previous file goes back
		werr = cmp.Or(werr, fmt.Errorf("%s: %s is missing after the write: %w", prefix, path, perr))
		if rerr := os.Rename(kept, path); rerr != nil {
			return "", notes, fmt.Errorf("%w (and the previous file stays at %s: %v)", werr, kept, rerr)
		}
		return "", notes, werr
	case os.SameFile(pi, ki) && werr != nil:
		// Failed before its rename: path is the previous file, and the
		// second name goes.
		if rerr := os.Remove(kept); rerr != nil {
			return "", notes, fmt.Errorf("%w (and %s, a second name of the previous file, stays: %v)", werr, kept, rerr)
		}
		return "", notes, werr
	case os.SameFile(pi, ki):
		// write opened path and wrote in place, through the link: it
		// broke ReplaceFile's contract, and the previous file is lost.
		return "", notes, fmt.Errorf("%s: %s was written in place, not replaced by a rename: the previous file is overwritten (%s names it too)", prefix, path, kept)
	case werr != nil:
		// Failed after its rename (syncing the folder): the new file is
		// at path, the previous one at kept.
		return "", notes, fmt.Errorf("%w (the previous %s is kept at %s)", werr, path, kept)
	}
	return kept, notes, nil
}

// linkAside gives the file at path the second name kept (a hard link to
// it; to a symbolic link itself, not what it names). Tests replace it to
// take the way of a file system without hard links.
var linkAside = os.Link

// RemoveKilledTempFiles deletes the temporary files that earlier writes
// of path (fsutil.WriteAtomic: a GGUF model, LoRA or imatrix) left beside
// it when they were killed mid-write, which no later write would ever
// reuse (gigabytes for a model), and returns their names. A file goes
// only when all of these say it is such a leftover, never a user's file:
// fsutil.RemoveKilledTemps's rule with the GGUF magic.
func RemoveKilledTempFiles(path string) ([]string, error) {
	removed, err := fsutil.RemoveKilledTemps(path, "GGUF")
	if err != nil {
		err = fmt.Errorf("export: %w", err)
	}
	return removed, err
}

// removeStaleSecondNames removes the kept names beside path
// (path.replaced-*) that name the very file at path: the second names
// forced writes make before they write, which a killed one leaves (its
// file never replaced). Removing one deletes no content (path names the
// same file); a kept name of another file (a replaced file) stays.
func removeStaleSecondNames(path string) ([]string, error) {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, nil
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), filepath.Base(path)+".replaced-") {
			names = append(names, filepath.Join(filepath.Dir(path), e.Name()))
		}
	}
	var removed []string
	for _, n := range names {
		ni, err := os.Lstat(n)
		if err != nil || !ni.Mode().IsRegular() || !os.SameFile(fi, ni) {
			continue
		}
		if err := os.Remove(n); err != nil {
			return removed, err
		}
		removed = append(removed, n)
	}
	return removed, nil
}

// describeFile says what the earlier file at path (whose Lstat is fi) is,
// by rule.Describe, or its time.
func describeFile(path string, fi os.FileInfo, rule FileRule) string {
	if rule.Describe != nil {
		return rule.Describe(path)
	}
	return "an earlier file of this kind that ftune wrote, " + fi.ModTime().Format("2006-01-02 15:04:05")
}
