package safetensors

import (
	"errors"
	"fmt"
)

// DType is an element type as spelled in a safetensors header ("F32", "BF16").
type DType string

// The dtypes of the safetensors specification that have a whole-byte size.
// Sub-byte types (F4, F6_*) and F8_E8M0 are rejected as unsupported.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	BOOL   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
)

// Size is the number of bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case I8, U8, BOOL, F8E4M3, F8E5M2:
		return 1
	}
	return 0
}

// Valid reports whether d is one of the dtypes this package handles.
func (d DType) Valid() bool { return d.Size() > 0 }

// String returns the header spelling.
func (d DType) String() string { return string(d) }

// ParseDType checks a header dtype string. The match is exact (the format is
// case-sensitive); an unknown name gives an error wrapping ErrUnsupportedDType.
func ParseDType(s string) (DType, error) {
	d := DType(s)
	if !d.Valid() {
		return "", fmt.Errorf("dtype %q: %w", s, ErrUnsupportedDType)
	}
	return d, nil
}

// Sentinel errors; every error of this package wraps one of them (or an
// *os.PathError for a file that cannot be opened) with the file, the tensor
// and what was expected.
var (
	// ErrCorrupt: the bytes are not a valid safetensors file (or index).
	ErrCorrupt = errors.New("corrupt safetensors file")
	// ErrNotFound: a tensor (or a model file in a folder) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnsupportedDType: a dtype this package does not know.
	ErrUnsupportedDType = errors.New("unsupported dtype")
	// ErrInvalid: a tensor handed to Write is inconsistent (size, name, dims).
	ErrInvalid = errors.New("invalid tensor")
	// ErrClosed: the File or Set was closed.
	ErrClosed = errors.New("safetensors file closed")
)

// Tensor is one named tensor. Data is the raw little-endian bytes in
// row-major order; for a Tensor returned by File.Tensor or Set.Tensor it
// aliases the read-only memory mapping: do not write to it, and do not use it
// after Close (copy what must outlive the file).
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
	// Fill, set instead of Data on a tensor to write, produces its bytes
	// when Write or WriteSharded reaches it, so a file's tensors need not
	// be in memory all at once (an export encodes one at a time). It must
	// return exactly the bytes Shape and DType call for; an error it
	// returns ends the write, which then leaves no file.
	Fill func() ([]byte, error)
}

// byteSize is the tensor's data size from its shape and dtype (validate
// has checked that it does not overflow).
func (t Tensor) byteSize() int { return t.NumElements() * t.DType.Size() }

// NumElements is the product of the dimensions (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}
