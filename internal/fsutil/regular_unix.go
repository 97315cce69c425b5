//go:build unix

package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// openNoBlock keeps OpenRegular's open from waiting: on a named pipe with
// no writer (which a plain read-only open waits for, uninterruptibly by a
// context) and on a device that waits for a carrier. O_NOCTTY keeps a link
// to a terminal from becoming the process's controlling terminal.
const openNoBlock = unix.O_NONBLOCK | unix.O_NOCTTY

// clearNoBlock puts a regular file opened with openNoBlock back in
// blocking mode: O_NONBLOCK means nothing for local regular files, but a
// network or FUSE file system may honour it and answer EAGAIN, which a
// file not in Go's poller would return to the reader as an error.
func clearNoBlock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
