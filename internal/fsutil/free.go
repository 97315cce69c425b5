package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// FreeBytes is the space left for this user on the file system that holds
// path, or would hold it: a path not created yet is looked up at its
// nearest existing parent. ok is false where the figure is not known.
func FreeBytes(path string) (free uint64, ok bool) {
	p, err := filepath.Abs(path)
	if err != nil {
		return 0, false
	}
	for {
		if _, err := os.Stat(p); err == nil {
			return statfsFree(p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return 0, false
		}
		parent := filepath.Dir(p)
		if parent == p {
			return 0, false
		}
		p = parent
	}
}
