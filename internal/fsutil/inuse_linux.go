package fsutil

import (
	"os"
	"path/filepath"
	"strings"
)

// HeldOpen reports whether a live process has path open, as fuser would
// tell: a /proc/<pid>/fd link naming it. known is false when /proc cannot
// be read; a process whose fds this user may not read (another user's)
// is not seen. The links are read, not followed, so a file on a hung
// mount cannot block the scan.
func HeldOpen(path string) (open, known bool) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, false
	}
	names := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		names = append(names, real) // the kernel's links name the resolved path
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false, false
	}
	for _, p := range procs {
		if strings.Trim(p.Name(), "0123456789") != "" {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not this user's
		}
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil {
				for _, n := range names {
					if target == n {
						return true, true
					}
				}
			}
		}
	}
	return false, true
}
