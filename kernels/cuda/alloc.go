package cuda

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// Allocator is a caching allocator for one device. Sizes are rounded up to a
// size class (four classes per power of two, at least 512 bytes, so at most
// 25% is wasted), and freed blocks wait in a free list per class for the next
// request of that class instead of going back to the driver: a training step
// allocates the same sizes every step, so after the first step no request
// reaches cuMemAlloc.
//
// Blocks are reused in program order, so the allocator is safe for work queued
// on one stream (the DESIGN's one stream per step); a caller that frees a
// buffer still in use by another stream must synchronize first.
//
// With a limit (SetLimit, the trainer's --max-device-memory), the bytes
// reserved from the driver never exceed it: a request that would is first
// served by giving cached blocks back, else refused with an
// *OutOfMemoryError naming the limit, the live and reserved bytes and the
// request. The driver's own CUDA_ERROR_OUT_OF_MEMORY becomes the same error.
type Allocator struct {
	d    MemorySource
	mu   sync.Mutex
	free map[int][]Ptr // class size -> cached blocks
	size map[Ptr]int   // live block -> class size

	live, peak, reserved int64
	limit                int64 // 0: none
	driverAllocs         int
}

// MemorySource is where an Allocator gets its blocks: the device (its
// driver calls), or a fake in tests.
type MemorySource interface {
	MemAlloc(n int) (Ptr, error)
	MemFree(p Ptr) error
}

// NewAllocator returns a caching allocator over src; a Device has its own
// (Device.Allocator), this is for tests of the caching and the limit.
func NewAllocator(src MemorySource) *Allocator {
	return &Allocator{d: src, free: map[int][]Ptr{}, size: map[Ptr]int{}}
}

func newAllocator(d *Device) *Allocator { return NewAllocator(d) }

// SetLimit caps the bytes reserved from the driver (live plus cached); 0
// removes the cap. Blocks already reserved past a new, lower cap are not
// taken back from their owners: cached ones are trimmed now, and the next
// allocation is refused until the live ones are freed.
func (a *Allocator) SetLimit(n int64) error {
	if n < 0 {
		return badArg("SetLimit: %d bytes", n)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.limit = n
	if n > 0 && a.reserved > n {
		return a.trimLocked()
	}
	return nil
}

// Limit returns the cap on reserved bytes (0: none).
func (a *Allocator) Limit() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit
}

// OutOfMemoryError is an allocation the allocator refused: past its limit,
// or refused by the driver (CUDA_ERROR_OUT_OF_MEMORY) after the cached
// blocks were given back. errors.Is(err, ErrOutOfMemory) holds for both.
type OutOfMemoryError struct {
	Requested int   // bytes asked for
	Class     int   // bytes the size class reserves
	Live      int64 // bytes handed out and not freed
	Reserved  int64 // bytes held from the driver
	Limit     int64 // the cap; 0 when the driver refused
	Driver    error // the driver's error, nil when the cap refused
}

func (e *OutOfMemoryError) Error() string {
	if e.Limit > 0 && e.Driver == nil {
		return fmt.Sprintf("cuda: out of device memory: %s requested (%s with its size class) with %s live and %s reserved, past the device-memory cap of %s (--max-device-memory)",
			gib(int64(e.Requested)), gib(int64(e.Class)), gib(e.Live), gib(e.Reserved), gib(e.Limit))
	}
	cap := ""
	if e.Limit > 0 {
		cap = fmt.Sprintf(", under the cap of %s (--max-device-memory)", gib(e.Limit))
	}
	return fmt.Sprintf("cuda: out of device memory: %s requested (%s with its size class) with %s live and %s reserved%s; the device has no more (%v)",
		gib(int64(e.Requested)), gib(int64(e.Class)), gib(e.Live), gib(e.Reserved), cap, e.Driver)
}

// Is makes errors.Is(err, ErrOutOfMemory) hold.
func (e *OutOfMemoryError) Is(target error) bool { return target == ErrOutOfMemory }

// Unwrap is the driver's error, if any.
func (e *OutOfMemoryError) Unwrap() error { return e.Driver }

// gib prints a byte count in GiB (MiB below one GiB).
func gib(n int64) string {
	if n < 1<<30 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// BlockBytes is the bytes the allocator hands out for a request of n: its
// size class (a memory plan counts each tensor so).
func BlockBytes(n int) int { return classSize(max(n, 1)) }

// classSize rounds n up to its size class.
func classSize(n int) int {
	const minClass = 512
	if n <= minClass {
		return minClass
	}
	// Top power of two at or below n, then quarter steps above it.
	p := 1 << (bits.Len(uint(n)) - 1)
	step := p / 4
	return (n + step - 1) / step * step
}

// Alloc returns a device block of at least n bytes, aligned to 256 bytes
// (the driver's alignment; the classes are multiples of 128 bytes and each
// block is its own driver allocation).
func (a *Allocator) Alloc(n int) (Ptr, error) {
	if n <= 0 {
		return 0, badArg("Alloc: size %d", n)
	}
	c := classSize(n)
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.cachedLocked(c); ok {
		return p, nil
	}
	if a.limit > 0 && a.reserved+int64(c) > a.limit {
		// Give the cached blocks of other classes back; refuse if the
		// live ones alone leave no room.
		if e := a.trimLocked(); e != nil {
			return 0, e
		}
		if a.reserved+int64(c) > a.limit {
			return 0, &OutOfMemoryError{Requested: n, Class: c, Live: a.live, Reserved: a.reserved, Limit: a.limit}
		}
	}
	p, err := a.d.MemAlloc(c)
	if errors.Is(err, ErrOutOfMemory) {
		// Give the cached blocks of other classes back and try once more.
		if e := a.trimLocked(); e != nil {
			return 0, e
		}
		p, err = a.d.MemAlloc(c)
		if errors.Is(err, ErrOutOfMemory) {
			return 0, &OutOfMemoryError{Requested: n, Class: c, Live: a.live, Reserved: a.reserved, Limit: a.limit, Driver: err}
		}
	}
	if err != nil {
		return 0, fmt.Errorf("allocate %d bytes (live %d, reserved %d): %w", c, a.live, a.reserved, err)
	}
	a.driverAllocs++
	a.reserved += int64(c)
	a.take(p, c)
	return p, nil
}

// AllocCached returns a cached block of at least n bytes, as Alloc would,
// but never reaches the driver: ok is false when no cached block of n's
// size class is free.
func (a *Allocator) AllocCached(n int) (p Ptr, ok bool) {
	if n <= 0 {
		return 0, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cachedLocked(classSize(n))
}

func (a *Allocator) cachedLocked(c int) (Ptr, bool) {
	l := a.free[c]
	if len(l) == 0 {
		return 0, false
	}
	p := l[len(l)-1]
	a.free[c] = l[:len(l)-1]
	a.take(p, c)
	return p, true
}

func (a *Allocator) take(p Ptr, c int) {
	a.size[p] = c
	a.live += int64(c)
	if a.live > a.peak {
		a.peak = a.live
	}
}

// Free returns a block to its free list.
func (a *Allocator) Free(p Ptr) error {
	if p == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.size[p]
	if !ok {
		return fmt.Errorf("cuda: Free of %#x, which this allocator did not hand out (or freed twice)", uint64(p))
	}
	delete(a.size, p)
	a.live -= int64(c)
	a.free[c] = append(a.free[c], p)
	return nil
}

// Trim returns every cached (free) block to the driver.
func (a *Allocator) Trim() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.trimLocked()
}

func (a *Allocator) trimLocked() error {
	var first error
	for c, l := range a.free {
		for _, p := range l {
			if err := a.d.MemFree(p); err != nil && first == nil {
				first = err
			}
			a.reserved -= int64(c)
		}
		delete(a.free, c)
	}
	return first
}

// AllocStats are the allocator's byte counts.
type AllocStats struct {
	Live         int64 // bytes in blocks handed out and not freed
	Peak         int64 // largest Live seen (since ResetPeak)
	Reserved     int64 // bytes held from the driver, live or cached
	Limit        int64 // the cap on Reserved (SetLimit); 0: none
	DriverAllocs int   // cuMemAlloc calls made
}

// Stats returns the current counts.
func (a *Allocator) Stats() AllocStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AllocStats{Live: a.live, Peak: a.peak, Reserved: a.reserved, Limit: a.limit, DriverAllocs: a.driverAllocs}
}

// ResetPeak sets Peak to the current Live (to measure one step's peak).
func (a *Allocator) ResetPeak() {
	a.mu.Lock()
	a.peak = a.live
	a.mu.Unlock()
}
