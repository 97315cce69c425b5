package tensor

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// StorageReleaser is implemented by backends whose storage can be given
// back before Go's collector finds it dead: device memory, which the
// collector does not see, so that a training step returns each activation
// at a known point (autograd's Tape.ReleaseActivations) instead of
// whenever the next collection runs; and host memory, which the CPU
// backend recycles while a trainer holds its pool (UseCPUPool) instead of
// having Go zero fresh pages.
type StorageReleaser interface {
	// Release gives st's memory back now. Every view of st becomes
	// invalid: using one afterwards is an error of the backend's, never a
	// read of someone else's data. Releasing twice is an error.
	Release(st Storage) error
}

// CanRelease reports whether t's backend can release storage early.
func CanRelease(t *Tensor) bool {
	_, ok := t.b.(StorageReleaser)
	return ok
}

// Release gives t's storage (shared by all its views) back to its backend
// now; on a backend without early release it does nothing. The caller
// vouches that no view of the storage is used again.
func Release(t *Tensor) error {
	r, ok := t.b.(StorageReleaser)
	if !ok {
		return nil
	}
	if err := r.Release(t.st); err != nil {
		return fmt.Errorf("release %v: %w", t, err)
	}
	return nil
}

// ReleaseAll releases each distinct storage among ts once (views of one
// storage count once; nil entries are skipped): the outputs of a pass, or
// a batch's tensors, that the caller has read and will not use again.
func ReleaseAll(ts ...*Tensor) error {
	seen := map[Storage]bool{}
	var errs []error
	for _, t := range ts {
		if t == nil || seen[t.st] {
			continue
		}
		seen[t.st] = true
		errs = append(errs, Release(t))
	}
	return errors.Join(errs...)
}

// bornSeq counts storage allocations made through New and FromHost.
var bornSeq atomic.Uint64

func nextBorn() uint64 { return bornSeq.Add(1) }

// Born is the allocation order of t's storage: views share their storage's
// number, storages allocated later have larger ones, and 0 means the
// storage came from elsewhere (Persist's copies, a backend's internals).
// Autograd compares it with BornMark to tell the activations a tape
// produced from the parameters and inputs that existed before it.
func Born(t *Tensor) uint64 { return t.born }

// BornMark is the number the next allocation will exceed: every storage
// allocated after the call has Born(t) > BornMark().
func BornMark() uint64 { return bornSeq.Load() }

// FromStorage wraps an existing storage of b as a contiguous tensor of the
// given shape (Born 0: never released by autograd). For backends that wrap
// another (tests' counting backends, which poison what they release).
func FromStorage(b Backend, st Storage, shape ...int) *Tensor {
	s := Shape(shape).Clone()
	if s.Numel() != st.Len() {
		fail("FromStorage: %d elements for shape %v", st.Len(), s)
	}
	return &Tensor{b: b, st: st, dtype: st.DType(), shape: s, strides: ContiguousStrides(s)}
}
