//go:build !unix

package fsutil

// syncDir is a no-op where directories cannot be opened for fsync (Windows):
// there the rename is made durable by the file system's own journal.
func syncDir(dir string) error { return nil }
