package tensor

import (
	"errors"
	"fmt"
)

// DeviceKind says where a tensor's storage lives.
type DeviceKind uint8

const (
	CPU DeviceKind = iota
	CUDA
)

// Device is one compute device.
type Device struct {
	Kind  DeviceKind
	Index int
}

func (d Device) String() string {
	if d.Kind == CUDA {
		return fmt.Sprintf("cuda:%d", d.Index)
	}
	return "cpu"
}

// Storage is a backend-owned buffer of Len elements of one dtype.
type Storage interface {
	DType() DType
	Len() int
}

// Tensor is a strided view of a Storage. Views share storage; ops allocate
// fresh contiguous outputs on the backend of their first operand.
type Tensor struct {
	b       Backend
	st      Storage
	dtype   DType
	shape   Shape
	strides []int
	offset  int
	// born orders storage allocations (see Born); views share it.
	born uint64
}

// Error is the panic value of tensor ops whose operands break an invariant
// (shape mismatch, wrong dtype) or whose backend fails. Library entry points
// that take user input validate it first and convert any remaining Error
// into an ordinary error with Catch.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(format string, args ...any) {
	panic(&Error{fmt.Errorf("tensor: "+format, args...)})
}

func check(err error) {
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			panic(te)
		}
		panic(&Error{err})
	}
}

// Catch runs fn and returns the *Error it panicked with, if any; other panics
// propagate. Use it where a chain of ops meets a caller that wants an error.
func Catch(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if te, ok := r.(*Error); ok {
				err = te
				return
			}
			panic(r)
		}
	}()
	fn()
	return nil
}

// New allocates an uninitialised contiguous tensor on b.
func New(b Backend, dt DType, shape ...int) *Tensor {
	s := Shape(shape).Clone()
	for _, d := range s {
		if d < 0 {
			fail("negative dimension in shape %v", s)
		}
	}
	st, err := b.Alloc(dt, s.Numel())
	if err != nil {
		// The backend knows only an element count; the shape names the
		// tensor that did not fit (device out-of-memory errors).
		check(fmt.Errorf("allocate %v %v: %w", dt, s, err))
	}
	return &Tensor{b: b, st: st, dtype: dt, shape: s, strides: ContiguousStrides(s), born: nextBorn()}
}

// Zeros allocates a contiguous tensor filled with zeros.
func Zeros(b Backend, dt DType, shape ...int) *Tensor {
	t := New(b, dt, shape...)
	check(b.Fill(t, 0))
	return t
}

// Full allocates a contiguous tensor filled with v.
func Full(b Backend, dt DType, v float64, shape ...int) *Tensor {
	t := New(b, dt, shape...)
	check(b.Fill(t, v))
	return t
}

// FromHost uploads host data ([]float32, []float64, []uint16 for BF16/F16,
// []int32, []int64) as a contiguous tensor of the given shape.
func FromHost(b Backend, dt DType, data any, shape ...int) *Tensor {
	s := Shape(shape).Clone()
	st, err := b.FromHost(dt, data)
	check(err)
	if st.Len() != s.Numel() {
		fail("FromHost: %d elements for shape %v", st.Len(), s)
	}
	return &Tensor{b: b, st: st, dtype: dt, shape: s, strides: ContiguousStrides(s), born: nextBorn()}
}

// FromF32 is FromHost for float32 data.
func FromF32(b Backend, data []float32, shape ...int) *Tensor {
	return FromHost(b, F32, data, shape...)
}

// Scalar makes a 0-d tensor.
func Scalar(b Backend, dt DType, v float64) *Tensor { return Full(b, dt, v) }

func (t *Tensor) Backend() Backend { return t.b }
func (t *Tensor) Device() Device   { return t.b.Device() }
func (t *Tensor) DType() DType     { return t.dtype }
func (t *Tensor) Shape() Shape     { return t.shape }
func (t *Tensor) Strides() []int   { return t.strides }
func (t *Tensor) Offset() int      { return t.offset }
func (t *Tensor) Storage() Storage { return t.st }
func (t *Tensor) Rank() int        { return len(t.shape) }
func (t *Tensor) Numel() int       { return t.shape.Numel() }

// Dim returns the size of axis i (negative counts from the end).
func (t *Tensor) Dim(i int) int {
	i, err := normAxis(i, len(t.shape))
	check(err)
	return t.shape[i]
}

func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor(%v %v %v)", t.dtype, t.shape, t.b.Device())
}

// IsContiguous reports whether the view is dense row-major from its offset.
func (t *Tensor) IsContiguous() bool {
	acc := 1
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.strides[i] != acc {
			return false
		}
		acc *= t.shape[i]
	}
	return true
}

func (t *Tensor) view(shape Shape, strides []int, offset int) *Tensor {
	return &Tensor{b: t.b, st: t.st, dtype: t.dtype, shape: shape, strides: strides, offset: offset, born: t.born}
}

// Contiguous returns t itself if dense, else a dense copy.
func (t *Tensor) Contiguous() *Tensor {
	if t.IsContiguous() {
		return t
	}
	out := New(t.b, t.dtype, t.shape...)
	check(t.b.Copy(out, t))
	return out
}

// Clone returns a dense copy that shares nothing with t.
func (t *Tensor) Clone() *Tensor {
	out := New(t.b, t.dtype, t.shape...)
	check(t.b.Copy(out, t))
	return out
}

// To converts to another dtype (a copy; t itself if already dt).
func (t *Tensor) To(dt DType) *Tensor {
	if t.dtype == dt {
		return t
	}
	out := New(t.b, dt, t.shape...)
	check(t.b.Copy(out, t))
	return out
}

// CopyFrom copies src into t (same shape; dtype converted).
func (t *Tensor) CopyFrom(src *Tensor) {
	if !t.shape.Equal(src.shape) {
		fail("CopyFrom: shape %v into %v", src.shape, t.shape)
	}
	check(t.b.Copy(t, src))
}

// Fill sets every element of the view to v.
func (t *Tensor) Fill(v float64) { check(t.b.Fill(t, v)) }

// Reshape returns a view with a new shape; one dimension may be -1. A
// non-contiguous tensor is copied first.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	s := Shape(shape).Clone()
	neg, known := -1, 1
	for i, d := range s {
		if d == -1 {
			if neg >= 0 {
				fail("Reshape %v: more than one -1", s)
			}
			neg = i
		} else {
			known *= d
		}
	}
	if neg >= 0 {
		if known == 0 || t.Numel()%known != 0 {
			fail("Reshape %v -> %v: sizes do not divide", t.shape, s)
		}
		s[neg] = t.Numel() / known
	}
	if s.Numel() != t.Numel() {
		fail("Reshape %v -> %v: %d elements vs %d", t.shape, s, t.Numel(), s.Numel())
	}
	c := t.Contiguous()
	return c.view(s, ContiguousStrides(s), c.offset)
}

// Permute reorders the axes (a view).
func (t *Tensor) Permute(axes ...int) *Tensor {
	if len(axes) != len(t.shape) {
		fail("Permute %v of rank-%d tensor", axes, len(t.shape))
	}
	seen := make([]bool, len(axes))
	s := make(Shape, len(axes))
	st := make([]int, len(axes))
	for i, a := range axes {
		a, err := normAxis(a, len(t.shape))
		check(err)
		if seen[a] {
			fail("Permute %v: axis repeated", axes)
		}
		seen[a] = true
		s[i], st[i] = t.shape[a], t.strides[a]
	}
	return t.view(s, st, t.offset)
}

// Transpose swaps two axes (a view).
func (t *Tensor) Transpose(a, b int) *Tensor {
	axes := make([]int, len(t.shape))
	for i := range axes {
		axes[i] = i
	}
	a, err := normAxis(a, len(t.shape))
	check(err)
	b, err = normAxis(b, len(t.shape))
	check(err)
	axes[a], axes[b] = axes[b], axes[a]
	return t.Permute(axes...)
}

// Narrow keeps [start, start+length) of one axis (a view).
func (t *Tensor) Narrow(axis, start, length int) *Tensor {
	axis, err := normAxis(axis, len(t.shape))
	check(err)
	if start < 0 || length < 0 || start+length > t.shape[axis] {
		fail("Narrow axis %d [%d,%d) of size %d", axis, start, start+length, t.shape[axis])
	}
	s := t.shape.Clone()
	s[axis] = length
	return t.view(s, append([]int(nil), t.strides...), t.offset+start*t.strides[axis])
}

// Slice is Narrow written as [start, end).
func (t *Tensor) Slice(axis, start, end int) *Tensor { return t.Narrow(axis, start, end-start) }

// Expand broadcasts size-1 axes to shape (stride 0; a view). Leading axes
// may be added.
func (t *Tensor) Expand(shape Shape) *Tensor {
	if len(shape) < len(t.shape) {
		fail("Expand %v to %v", t.shape, shape)
	}
	pad := len(shape) - len(t.shape)
	st := make([]int, len(shape))
	for i := range shape {
		if i < pad {
			continue
		}
		d := t.shape[i-pad]
		switch {
		case d == shape[i]:
			st[i] = t.strides[i-pad]
		case d == 1:
			st[i] = 0
		default:
			fail("Expand %v to %v", t.shape, shape)
		}
	}
	return t.view(shape.Clone(), st, t.offset)
}

// Unsqueeze inserts a size-1 axis.
func (t *Tensor) Unsqueeze(axis int) *Tensor {
	if axis < 0 {
		axis += len(t.shape) + 1
	}
	s := append(t.shape[:axis:axis], append(Shape{1}, t.shape[axis:]...)...)
	st := append(t.strides[:axis:axis], append([]int{0}, t.strides[axis:]...)...)
	return t.view(s, st, t.offset)
}

// F32 downloads the values as float32 (any float dtype; ints converted).
func (t *Tensor) F32() []float32 { return download[float32](t, F32) }

// F64 downloads the values as float64.
func (t *Tensor) F64() []float64 { return download[float64](t, F64) }

// I64 downloads integer values as int64.
func (t *Tensor) I64() []int64 { return download[int64](t, I64) }

// download copies t's values to the host as dt. A converted or contiguous
// copy made on the way is released once read (on a GPU a readback such as
// the loss's Item would otherwise leave one to the collector every call).
func download[E any](t *Tensor, dt DType) []E {
	c := t.To(dt).Contiguous()
	out := make([]E, c.Numel())
	check(c.b.ToHost(c, out))
	if c.st != t.st {
		check(Release(c))
	}
	return out
}

// Item returns the single value of a one-element tensor.
func (t *Tensor) Item() float64 {
	if t.Numel() != 1 {
		fail("Item of %v", t.shape)
	}
	return t.F64()[0]
}
