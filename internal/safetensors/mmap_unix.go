//go:build unix

package safetensors

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only. Pages are loaded on first touch,
// so opening a multi-gigabyte checkpoint costs only the header's pages.
// A file truncated by another process while mapped raises SIGBUS on access;
// files written by this project are replaced by rename, never truncated.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	return data, func() error { return unix.Munmap(data) }, nil
}

// dropPages advises the kernel that the whole pages of data[begin:end] (a
// mapping from mapFile, whose start is page-aligned) are not needed: for a
// read-only shared file mapping, MADV_DONTNEED unmaps them from this
// process and later reads fault them back from the page cache or the file.
// The advice is best effort: an error only means the pages stay resident.
func dropPages(data []byte, begin, end int) {
	page := os.Getpagesize()
	lo := (begin + page - 1) / page * page
	hi := end / page * page
	if hi <= lo {
		return
	}
	_ = unix.Madvise(data[lo:hi], unix.MADV_DONTNEED)
}
