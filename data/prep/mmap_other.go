//go:build !unix

package prep

import "os"

// mapFile reads the file where mmap is not available through syscall.
func mapFile(path string) ([]byte, func() error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
