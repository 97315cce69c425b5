package safetensors

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ftune/ftune/internal/fsutil"
)

// File is an open, validated safetensors file. Its tensors' Data alias the
// file's memory mapping. Tensor, Names and Metadata may be called from
// several goroutines; Close must not race with them.
type File struct {
	path   string
	data   []byte // the whole file: a mapping, or heap memory where mmap is unavailable
	unmap  func() error
	hdr    *header
	closed bool
}

// Open maps path and validates its header. On error nothing stays mapped.
func Open(path string) (*File, error) {
	// A named pipe or a device in a model folder would block the open or
	// the read forever: OpenRegular refuses them without reading.
	f, st, err := fsutil.OpenRegular(path)
	var nr *fsutil.NotRegularError
	switch {
	case errors.As(err, &nr) && nr.Mode.IsDir():
		return nil, fmt.Errorf("safetensors %s: is a directory, want a file (use OpenDir for a model folder): %w", path, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close() // a mapping stays valid after its descriptor is closed
	size := st.Size()
	if size < 8 {
		// Checked before mapping: mmap of an empty file fails with EINVAL,
		// which would hide the real problem.
		return nil, corrupt(path, "file is %d bytes, shorter than the 8-byte header length (truncated?)", size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("safetensors %s: %d bytes do not fit this machine's address space", path, size)
	}
	data, unmap, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	hdr, err := parseHeader(path, data)
	if err != nil {
		unmap()
		return nil, err
	}
	return &File{path: path, data: data, unmap: unmap, hdr: hdr}, nil
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Names returns the tensor names in sorted order (a new slice).
func (f *File) Names() []string { return slices.Clone(f.hdr.names) }

// Len returns the number of tensors.
func (f *File) Len() int { return len(f.hdr.names) }

// Has reports whether the file holds a tensor of that name.
func (f *File) Has(name string) bool {
	_, ok := f.hdr.entries[name]
	return ok
}

// Metadata returns a copy of the header's __metadata__ map (nil when absent).
func (f *File) Metadata() map[string]string { return maps.Clone(f.hdr.metadata) }

// Tensor returns the named tensor; its Data aliases the mapping (read-only,
// valid until Close). A missing name gives an error wrapping ErrNotFound.
func (f *File) Tensor(name string) (Tensor, error) {
	if f.closed {
		return Tensor{}, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, ErrClosed)
	}
	e, ok := f.hdr.entries[name]
	if !ok {
		return Tensor{}, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, ErrNotFound)
	}
	return Tensor{
		Name:  name,
		DType: e.dtype,
		Shape: slices.Clone(e.shape),
		// The capacity is capped so that an append on Data reallocates
		// instead of overwriting the next tensor.
		Data: f.data[e.begin:e.end:e.end],
	}, nil
}

// Release says the named tensor's data has been copied out and will not be
// read again soon. Where the file is memory-mapped, the pages that lie
// wholly inside the tensor leave the process's resident memory; the kernel
// keeps them in its page cache, where they no longer count against the
// process, and reading the data again faults them back in, so a Release
// never makes the data wrong, only slower to reach. Loading a model converts
// one tensor at a time: releasing each keeps the mapped file from adding its
// whole size to the process's peak memory. An unknown name, or a closed
// file, is ignored.
func (f *File) Release(name string) {
	e, ok := f.hdr.entries[name]
	if !ok || f.closed {
		return
	}
	dropPages(f.data, e.begin, e.end)
}

// Close unmaps the file. Tensor data obtained from it must not be used
// afterwards (on unix, touching it faults). Closing twice is harmless.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	err := f.unmap()
	f.data = nil
	if err != nil {
		return fmt.Errorf("safetensors %s: unmap: %w", f.path, err)
	}
	return nil
}
