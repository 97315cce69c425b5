//go:build !linux

package export

import (
	"os"
	"time"
)

// changedAt is fi's modification time (fsutil.HeldOpen cannot tell here
// whether a write holds a file, and no temporary file is removed).
func changedAt(fi os.FileInfo) time.Time { return fi.ModTime() }
