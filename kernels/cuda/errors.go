package cuda

import (
	"errors"
	"fmt"
	"unsafe"
)

// Error is a failed driver call: the call's name and the CUresult, with the
// CUDA_ERROR_* name read from the driver.
type Error struct {
	Call string // e.g. "cuMemAlloc"
	Code int    // the CUresult
	Name string // e.g. "CUDA_ERROR_OUT_OF_MEMORY"
}

func (e *Error) Error() string {
	return fmt.Sprintf("cuda: %s: %s (%d)", e.Call, e.Name, e.Code)
}

// Is makes errors.Is(err, ErrOutOfMemory) work on wrapped driver errors.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Call == "" && t.Code == e.Code
}

// Errors callers branch on; compare with errors.Is.
var (
	ErrOutOfMemory = &Error{Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY"}
	// ErrBadArgument is returned by launchers for sizes or strides they cannot take.
	ErrBadArgument = errors.New("cuda: bad argument")
)

// check turns a CUresult into an error (nil for CUDA_SUCCESS).
func check(call string, rc int32) error {
	if rc == 0 {
		return nil
	}
	name := fmt.Sprintf("CUresult %d", rc)
	if cuGetErrorName != nil {
		var p unsafe.Pointer
		if cuGetErrorName(rc, &p) == 0 && p != nil {
			name = cString(p)
		}
	}
	return &Error{Call: call, Code: int(rc), Name: name}
}

func badArg(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadArgument, fmt.Sprintf(format, args...))
}
