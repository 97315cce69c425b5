package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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

// CheckRoom refuses to start writing about need bytes at path when the
// file system that holds it has less free: the write would fail partway,
// after minutes for a model. Where the free space is not known it lets the
// write try. The error wraps syscall.ENOSPC.
func CheckRoom(path string, need int64) error {
	free, ok := FreeBytes(path)
	if !ok || need <= 0 || uint64(need) <= free {
		return nil
	}
	return fmt.Errorf("%s needs about %s, and its file system has %s free: %w", path, FormatBytes(need), FormatBytes(int64(free)), syscall.ENOSPC)
}
