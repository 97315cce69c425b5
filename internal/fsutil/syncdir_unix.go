//go:build unix

package fsutil

import "os"

// syncDir fsyncs a directory so that a rename inside it survives a crash;
// on POSIX systems the rename is only durable once the directory is synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
