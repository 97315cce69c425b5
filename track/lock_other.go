//go:build !unix

package track

import (
	"fmt"
	"os"
	"path/filepath"
)

// acquireLock records the holder in LockFile. Without flock here, two
// processes on one run folder are not kept apart.
func acquireLock(dir string, h Holder) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("track: lock %s: %w", path, err)
	}
	if err := writeHolder(f, h); err != nil {
		f.Close()
		return nil, fmt.Errorf("track: lock %s: %w", path, err)
	}
	return f, nil
}

func releaseLock(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}
