//go:build linux || darwin || freebsd

package fsutil

import "golang.org/x/sys/unix"

// statfsFree is the bytes an unprivileged user may still write on the file
// system holding path (f_bavail × f_bsize).
func statfsFree(path string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
