package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// AtomicFile is a file being written under a temporary name. Nothing is
// visible at the target path until Commit succeeds. Abort (or a failed
// Commit) removes the temporary file; calling Abort after Commit is a no-op,
// so `defer f.Abort()` is the intended pattern.
type AtomicFile struct {
	f    *os.File
	path string
	perm os.FileMode
	done bool
	err  error // first write error; Commit refuses to publish after one
}

// CreateAtomic starts writing path atomically. The parent directory must
// exist. perm is applied to the final file as is (no umask): the callers
// write model files and checkpoints, for which 0o644 is the usual choice.
func CreateAtomic(path string, perm os.FileMode) (*AtomicFile, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// The dot prefix keeps half-written files out of globs such as
	// "*.safetensors" that a concurrent reader might use.
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	return &AtomicFile{f: f, path: path, perm: perm}, nil
}

// Name returns the final path the file will have after Commit.
func (a *AtomicFile) Name() string { return a.path }

// Write writes to the temporary file. After the first error every later
// Write returns it too, and Commit fails.
func (a *AtomicFile) Write(p []byte) (int, error) {
	if a.done {
		return 0, fmt.Errorf("write %s: %w", a.path, os.ErrClosed)
	}
	if a.err != nil {
		return 0, a.err
	}
	n, err := a.f.Write(p)
	if err != nil {
		a.err = fmt.Errorf("write %s: %w", a.path, err)
		return n, a.err
	}
	return n, nil
}

// Commit flushes the data to disk, closes the file and renames it over the
// target path, then syncs the directory so the rename itself is durable.
// On any failure the temporary file is removed and the target is untouched.
func (a *AtomicFile) Commit() error {
	if a.done {
		return fmt.Errorf("commit %s: %w", a.path, os.ErrClosed)
	}
	if a.err != nil {
		a.Abort()
		return a.err
	}
	tmp := a.f.Name()
	if err := a.f.Sync(); err != nil {
		a.Abort()
		return fmt.Errorf("sync %s: %w", a.path, err)
	}
	if err := a.f.Chmod(a.perm); err != nil {
		a.Abort()
		return fmt.Errorf("chmod %s: %w", a.path, err)
	}
	a.done = true
	if err := a.f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close %s: %w", a.path, err)
	}
	if err := os.Rename(tmp, a.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", a.path, err)
	}
	if err := syncDir(filepath.Dir(a.path)); err != nil {
		return fmt.Errorf("sync directory of %s: %w", a.path, err)
	}
	return nil
}

// Abort discards the temporary file. It is safe to call more than once and
// after Commit, where it does nothing.
func (a *AtomicFile) Abort() error {
	if a.done {
		return nil
	}
	a.done = true
	tmp := a.f.Name()
	cerr := a.f.Close()
	rerr := os.Remove(tmp)
	if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("remove temporary file %s: %w", tmp, rerr)
	}
	if cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		return fmt.Errorf("close temporary file %s: %w", tmp, cerr)
	}
	return nil
}

// WriteAtomic creates path atomically with the content that write produces.
// If write returns an error, nothing is published and that error is
// returned (wrapped with the path).
func WriteAtomic(path string, perm os.FileMode, write func(w io.Writer) error) error {
	f, err := CreateAtomic(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(f); err != nil {
		if f.err != nil && errors.Is(err, f.err) {
			return err // already names the path
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// WriteFileAtomic is os.WriteFile made atomic: readers see the old content
// or data, never a prefix of data.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
