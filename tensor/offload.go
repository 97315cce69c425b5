package tensor

import "fmt"

// HostOffloader is implemented by backends whose memory is not the host's
// (a GPU), so that a value the computation needs again only much later
// (gradient checkpointing's saved block inputs, read again by the
// backward) can wait in host memory instead of device memory. The CPU
// backend does not implement it: its memory is host memory already.
type HostOffloader interface {
	// OffloadToHost queues a copy of all of st's elements into host memory
	// the backend owns, behind the work that wrote st, and returns it. st
	// is left as it was: the caller may Release it at once (the backend
	// orders the copy before any reuse of its memory).
	OffloadToHost(st Storage) (HostCopy, error)
}

// HostCopy is a storage's elements held in host memory by its backend.
type HostCopy interface {
	// Prefetch allocates a storage on the backend and queues the copy back
	// into it, so that the copy overlaps with the work queued before
	// Restore; the host memory is the backend's again. Prefetching twice,
	// or after Restore, does nothing.
	Prefetch() error
	// Restore returns the storage with the elements (prefetching first
	// when Prefetch was not called): work queued afterwards sees them. A
	// HostCopy restores once.
	Restore() (Storage, error)
	// Bytes is the size of the copy: the host memory it holds until
	// Prefetch or Restore.
	Bytes() int64
}

// Offloaded is a tensor's value moved to host memory by Offload.
type Offloaded struct {
	b     Backend
	h     HostCopy
	dtype DType
	shape Shape
}

// Offload copies t's value to host memory when its backend is a
// HostOffloader and t is all of its storage (contiguous, from element 0:
// a view of part of a storage is not worth moving, and its other elements
// would be lost), and returns the copy; otherwise nil and no error. t is
// unchanged: the caller releases its storage (Release) once nothing reads
// it again, which is what saves the device memory.
func Offload(t *Tensor) (*Offloaded, error) {
	o, ok := t.b.(HostOffloader)
	if !ok || !t.IsContiguous() || t.offset != 0 || t.Numel() != t.st.Len() || t.Numel() == 0 {
		return nil, nil
	}
	h, err := o.OffloadToHost(t.st)
	if err != nil {
		return nil, fmt.Errorf("offload %v to host memory: %w", t, err)
	}
	return &Offloaded{b: t.b, h: h, dtype: t.dtype, shape: t.shape.Clone()}, nil
}

// Prefetch starts bringing the value back (HostCopy.Prefetch): Restore
// then finds it on its way.
func (o *Offloaded) Prefetch() error {
	if err := o.h.Prefetch(); err != nil {
		return fmt.Errorf("prefetch %v %v from host memory: %w", o.dtype, o.shape, err)
	}
	return nil
}

// Restore brings the value back into a new tensor on its backend (a fresh
// storage, as New makes: a tape may release it when its last reader has
// run). It restores once.
func (o *Offloaded) Restore() (*Tensor, error) {
	st, err := o.h.Restore()
	if err != nil {
		return nil, fmt.Errorf("restore %v %v from host memory: %w", o.dtype, o.shape, err)
	}
	return &Tensor{b: o.b, st: st, dtype: o.dtype, shape: o.shape, strides: ContiguousStrides(o.shape), born: nextBorn()}, nil
}
