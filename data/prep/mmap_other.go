//go:build !unix

package prep

import (
	"io"

	"github.com/ftune/ftune/internal/fsutil"
)

// mapFile reads the file where mmap is not available through syscall: a
// regular file only, as on unix.
func mapFile(path string) ([]byte, func() error, error) {
	f, st, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
