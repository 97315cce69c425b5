package prep

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// removeKilledCacheTemps deletes the temporary files that earlier writes
// of the cache at path (WriteCache, through fsutil.WriteAtomic) left beside
// it when they were killed before their rename: no later write reuses
// them, and a large corpus's cache is gigabytes. It returns their names.
// A file goes only when all of these say it is such a leftover, never a
// user's file: its name is ".<name>.tmp-<digits>" (the name WriteAtomic
// gives), it is a regular file, its content starts as a cache does (the
// cache magic, or a prefix of it: empty for a write killed before its
// first buffer reached the disk), and no live process holds it open (a
// write of the same cache under way keeps its file). Where that last cannot
// be told (no /proc), nothing is removed. The rule is export's
// (export.RemoveKilledTempFiles) with the cache's magic for the GGUF's.
func removeKilledCacheTemps(path string) ([]string, error) {
	parent, base := filepath.Split(path)
	if parent == "" {
		parent = "."
	}
	pattern := regexp.MustCompile(`^\.` + regexp.QuoteMeta(base) + `\.tmp-\d+$`)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token cache %s: %w", path, err)
	}
	var removed []string
	for _, e := range entries {
		if !pattern.MatchString(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if !startsAsCache(p) {
			continue
		}
		if open, known := heldOpen(p); open || !known {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("token cache %s: remove the leftover %s: %w", path, p, err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// startsAsCache reports whether the regular file at p begins as a token
// cache: with cacheMagic, or, shorter than it, with a prefix of it (empty
// included).
func startsAsCache(p string) bool {
	f, _, err := fsutil.OpenRegular(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var head [len(cacheMagic)]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return false
	}
	return strings.HasPrefix(cacheMagic, string(head[:n]))
}

// noteKilledCacheTemps removes the leftovers of killed writes of the cache
// at path and says so on log (nil: not said).
func noteKilledCacheTemps(path string, log io.Writer) error {
	removed, err := removeKilledCacheTemps(path)
	if len(removed) > 0 && log != nil {
		fmt.Fprintf(log, "token cache: removed %d temporary file(s) of killed writes beside %s: %s\n", len(removed), path, strings.Join(removed, ", "))
	}
	return err
}
