package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// TempSiblings lists the entries beside path named as WriteAtomic names
// its temporaries (".<name>.tmp-<digits>"; the export package names its
// temporary folders so too), and the folder they are in. A missing folder
// has none.
func TempSiblings(path string) (string, []fs.DirEntry, error) {
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
		return parent, nil, err
	}
	var out []fs.DirEntry
	for _, e := range entries {
		if pattern.MatchString(e.Name()) {
			out = append(out, e)
		}
	}
	return parent, out, nil
}

// RemoveKilledTemps deletes the temporary files that writes of path
// through WriteAtomic left beside it when they were killed before their
// rename (no later write reuses them, and they can be gigabytes), and
// returns their names. A file goes only when all of these say it is such
// a leftover, never a user's file: TempSiblings names it, it is a regular
// file, its content begins with magic (or, shorter, is a prefix of it:
// empty for a write killed before its first buffer reached the disk), and
// no live process holds it open (a write under way at the same time keeps
// its file). Where that last cannot be told (no /proc), nothing is
// removed.
func RemoveKilledTemps(path, magic string) ([]string, error) {
	parent, entries, err := TempSiblings(path)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if !StartsAs(p, magic) {
			continue
		}
		if open, known := HeldOpen(p); open || !known {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove the leftover %s: %w", p, err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// StartsAs reports whether the regular file at p begins with magic or,
// shorter than it, is a prefix of it (empty included): a killed write's
// temporary may hold any prefix of the file it was writing.
func StartsAs(p, magic string) bool {
	f, _, err := OpenRegular(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(magic))
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return false
	}
	return strings.HasPrefix(magic, string(head[:n]))
}
