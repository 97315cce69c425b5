package export

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// tempName matches the names ftune gives the temporaries of its writes
// beside an output, and captures the output's name: ".<name>.tmp-<digits>"
// (fsutil.CreateAtomic's files, startTemp's folders).
var tempName = regexp.MustCompile(`^\.(.+)\.tmp-\d+$`)

// recentTemp is how recently a temporary file may have changed and not be
// taken for a killed write's: a write closes its file before renaming it
// (fsutil.AtomicFile.Commit), and in between no process holds it open.
var recentTemp = time.Minute

// removeOthersKilledTemps clears what the exports of other outputs than
// out left in out's folder when they were killed (kill -9, a crash, a
// full disk) before they finished: leftovers that only an export to their
// own path removed (removeKilledTemps, RemoveKilledTempFiles), which may
// never come, and which are as large as the model. It removes only what
// is provably such a leftover, and nothing else:
//
//   - a folder named as startTemp names them (tempName) that holds
//     partialMarker and whose lock no live process holds (startTemp locks
//     it before marking it, and a kill drops the lock);
//   - a regular file named as fsutil.CreateAtomic names them whose content
//     begins as a GGUF file does (or is a prefix of its magic: empty), that
//     no live process holds open (fsutil.HeldOpen), and that did not change
//     in the last minute (recentTemp).
//
// Such a leftover that is in use, or for which that cannot be told (no
// /proc, no locks), and a folder at such a name holding an export's record
// (an export killed while swapping; the next export to its path decides),
// are named in the notes with their size instead. Anything else at such a
// name is not looked at.
func removeOthersKilledTemps(out string) (notes []string, err error) {
	parent, own := filepath.Dir(out), filepath.Base(out)
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var removed, left []string
	defer func() { // what was done is said even when a later entry fails
		if len(removed) > 0 {
			notes = append(notes, fmt.Sprintf("removed %d temporary file(s) or folder(s) that killed exports of other outputs left in %s: %s", len(removed), parent, strings.Join(removed, ", ")))
		}
		if len(left) > 0 {
			notes = append(notes, fmt.Sprintf("left %d temporary file(s) or folder(s) of other outputs' exports in %s: %s", len(left), parent, strings.Join(left, ", ")))
		}
	}()
	for _, e := range ents {
		m := tempName.FindStringSubmatch(e.Name())
		if m == nil || m[1] == own {
			continue
		}
		p := filepath.Join(parent, e.Name())
		var why string // why it stays; "" removes it
		switch {
		case e.IsDir() && isRegular(filepath.Join(p, partialMarker)):
			switch held, known := folderHeld(p); {
			case held:
				why = "an export is writing it"
			case !known:
				why = "whether an export is writing it cannot be told here"
			}
		case e.IsDir() && isRegular(filepath.Join(p, ManifestFile)):
			why = fmt.Sprintf("an export's folder, which the next export to %s deals with", m[1])
		case e.IsDir():
			continue
		case e.Type().IsRegular() && fsutil.StartsAs(p, "GGUF"):
			open, known := fsutil.HeldOpen(p)
			fi, err := os.Lstat(p)
			switch {
			case err != nil:
				continue // gone meanwhile
			case open:
				why = "a process is writing it"
			case !known:
				why = "whether a process is writing it cannot be told here"
			case time.Since(changedAt(fi)) < recentTemp:
				why = "changed in the last minute"
			}
		default:
			continue
		}
		size := sizeOf(p)
		if why != "" {
			left = append(left, fmt.Sprintf("%s (%s, %s)", e.Name(), fsutil.FormatBytes(size), why))
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("export: remove the leftover %s: %w", p, err)
		}
		removed = append(removed, fmt.Sprintf("%s (%s)", e.Name(), fsutil.FormatBytes(size)))
	}
	return nil, nil
}

// isRegular reports whether p is a regular file (not followed through a
// link).
func isRegular(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// sizeOf is the bytes of the regular files at or under p.
func sizeOf(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
