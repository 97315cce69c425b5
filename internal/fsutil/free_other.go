//go:build !(linux || darwin || freebsd)

package fsutil

// statfsFree is not known here.
func statfsFree(string) (uint64, bool) { return 0, false }
