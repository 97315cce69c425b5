//go:build unix

package track

import (
	"errors"

	"golang.org/x/sys/unix"
)

// processAlive reports whether pid names a process on this host (signal 0
// checks without sending; EPERM means it exists but is someone else's).
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
