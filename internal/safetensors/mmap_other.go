//go:build !unix

package safetensors

import (
	"io"
	"os"
)

// mapFile reads the file into memory where no mmap is available (Windows,
// wasm, plan9): correct but it costs the file's size in heap.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// dropPages does nothing where the file was read into the heap: that
// memory is freed with the File.
func dropPages(data []byte, begin, end int) {}
