//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package export

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// holdFolder locks the folder dir (flock on the folder itself) until
// release: the sign that the export writing it is alive, which the kernel
// drops when that process ends, however it ends (kill -9 included). On a
// file system without such locks it takes none: folderHeld then cannot
// tell. removeKilledTemps leaves a held folder: an export to the same
// output running at the same time.
func holdFolder(dir string) (release func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return func() {}, nil
	}
	return func() { f.Close() }, nil
}

// folderHeld reports whether a live process holds dir's lock
// (holdFolder); known is false where that cannot be told (no such locks
// on its file system, an unreadable folder).
func folderHeld(dir string) (held, known bool) {
	f, err := os.Open(dir)
	if err != nil {
		return false, false
	}
	defer f.Close()
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); {
	case err == nil:
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false, true
	case errors.Is(err, unix.EWOULDBLOCK):
		return true, true
	}
	return false, false
}
