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
// Folders missing above path are made, as folder exports make theirs.
// Temporary files that killed writes of path left beside it are removed
// first (RemoveKilledTempFiles), which the notes say.
func ReplaceFile(path string, force bool, rule FileRule, write func() error) (kept string, notes []string, err error) {
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
// fsutil.RemoveKilledTemps's rule with the GGUF magic.
func RemoveKilledTempFiles(path string) ([]string, error) {
	removed, err := fsutil.RemoveKilledTemps(path, "GGUF")
	if err != nil {
		err = fmt.Errorf("export: %w", err)
	}
	return removed, err
}
