package export

import "github.com/ftune/ftune/internal/fsutil"

// heldOpen is fsutil.HeldOpen: whether a live process has path open.
func heldOpen(path string) (open, known bool) { return fsutil.HeldOpen(path) }
