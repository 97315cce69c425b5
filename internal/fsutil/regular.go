package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotRegular is what a NotRegularError matches with errors.Is.
var ErrNotRegular = errors.New("not a regular file")

// NotRegularError is OpenRegular's (and so ReadFileLimit's) refusal of a
// path that, once its links are followed and it is opened, is not a
// regular file.
type NotRegularError struct {
	Path   string
	Target string // where Path's links lead when it is one ("" otherwise)
	Mode   fs.FileMode
}

func (e *NotRegularError) Error() string {
	p := e.Path
	if e.Target != "" {
		p += " (a link to " + e.Target + ")"
	}
	return fmt.Sprintf("%s %s, not a regular file: ftune reads models, data and run files only from regular files (a pipe nobody writes would be waited on forever)", p, kindOf(e.Mode))
}

func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// kindOf says what a file that is not regular is, as "is a ...".
func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "is a named pipe"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "is a device"
	case m&fs.ModeSocket != 0:
		return "is a socket"
	case m.IsDir():
		return "is a directory"
	}
	return fmt.Sprintf("is not a regular file (mode %v)", m)
}

// OpenRegular opens path for reading, following links, and refuses with a
// NotRegularError anything that is not a regular file: a named pipe, a
// device, a socket, a directory. Model folders are untrusted, and such a
// file can block a reader forever (a pipe nobody writes) or never end
// (/dev/zero).
//
// The open itself cannot block: it asks for O_NONBLOCK (on Unix), under
// which opening a named pipe with no writer returns at once, and the check
// is made on the opened file (fstat), not on the name, so nothing can be
// swapped in between the check and the reads. Once the file is known to be
// regular, O_NONBLOCK is cleared again. info is the opened file's.
func OpenRegular(path string) (f *os.File, info fs.FileInfo, err error) {
	f, err = os.OpenFile(path, os.O_RDONLY|openNoBlock, 0)
	if err != nil {
		return nil, nil, err
	}
	info, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		e := &NotRegularError{Path: path, Mode: info.Mode()}
		if l, err := os.Lstat(path); err == nil && l.Mode()&fs.ModeSymlink != 0 {
			e.Target, _ = filepath.EvalSymlinks(path) // stats the links only: no open
		}
		return nil, nil, e
	}
	if err := clearNoBlock(f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, info, nil
}
