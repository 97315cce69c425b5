package export

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

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
// beside path under a new name (returned; never one that is taken), and
// put back if write fails.
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
	// Straight to a name of its own (never a temporary one, which the next
	// write's cleanup visits): a kill during write leaves path missing, the
	// user's file kept, and a temporary file that is ftune's.
	if kept, err = freeName(path); err != nil {
		return "", notes, err
	}
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
