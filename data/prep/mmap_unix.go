//go:build unix

package prep

import (
	"syscall"

	"github.com/ftune/ftune/internal/fsutil"
)

// mapFile maps path read-only. Training reads the cache in place, so a
// cache larger than memory is paged in on demand.
func mapFile(path string) ([]byte, func() error, error) {
	// A regular file: a named pipe nobody writes would block the open,
	// where no Ctrl-C reaches, and could not be mapped.
	f, st, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if st.Size() == 0 {
		return nil, func() error { return nil }, nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
