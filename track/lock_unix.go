//go:build unix

package track

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// acquireLock takes the run folder's lock: an flock on LockFile, held
// until release, which then names this process (pid, host, start). A
// second process fails with an error naming the holder. The kernel drops
// an flock when its process dies, so the lock of a killed run is taken
// over without any staleness guess.
func acquireLock(dir string, h Holder) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("track: lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if old, ok := readHolder(dir); ok {
				holder = old.String()
			}
			return nil, fmt.Errorf("track: run folder %s is in use by %s: %w", dir, holder, ErrRunLocked)
		}
		return nil, fmt.Errorf("track: lock %s: %w", path, err)
	}
	if err := writeHolder(f, h); err != nil {
		releaseLock(f)
		return nil, fmt.Errorf("track: lock %s: %w", path, err)
	}
	return f, nil
}

// releaseLock drops the flock. The file stays, naming the last holder.
func releaseLock(f *os.File) error {
	if f == nil {
		return nil
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return f.Close()
}
