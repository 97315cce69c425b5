package prep

import (
	"fmt"
	"io"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// removeKilledCacheTemps deletes the temporary files that earlier writes
// of the cache at path (WriteCache, through fsutil.WriteAtomic) left beside
// it when they were killed before their rename: no later write reuses
// them, and a large corpus's cache is gigabytes. It returns their names.
// A file goes only when all of these say it is such a leftover, never a
// user's file: fsutil.RemoveKilledTemps's rule (WriteAtomic's temporary
// name, a regular file, no live process holding it) with the cache's
// magic.
func removeKilledCacheTemps(path string) ([]string, error) {
	removed, err := fsutil.RemoveKilledTemps(path, cacheMagic)
	if err != nil {
		err = fmt.Errorf("token cache %s: %w", path, err)
	}
	return removed, err
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
