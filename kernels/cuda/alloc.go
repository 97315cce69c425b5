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
type Allocator struct {
	d    *Device
	mu   sync.Mutex
	free map[int][]Ptr // class size -> cached blocks
	size map[Ptr]int   // live block -> class size

	live, peak, reserved int64
	driverAllocs         int
}

func newAllocator(d *Device) *Allocator {
	return &Allocator{d: d, free: map[int][]Ptr{}, size: map[Ptr]int{}}
}

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
	if l := a.free[c]; len(l) > 0 {
		p := l[len(l)-1]
		a.free[c] = l[:len(l)-1]
		a.take(p, c)
		return p, nil
	}
	p, err := a.d.MemAlloc(c)
	if errors.Is(err, ErrOutOfMemory) {
		// Give the cached blocks of other classes back and try once more.
		if e := a.trimLocked(); e != nil {
			return 0, e
		}
		p, err = a.d.MemAlloc(c)
	}
	if err != nil {
		return 0, fmt.Errorf("allocate %d bytes (live %d, reserved %d): %w", c, a.live, a.reserved, err)
	}
	a.driverAllocs++
	a.reserved += int64(c)
	a.take(p, c)
	return p, nil
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
	DriverAllocs int   // cuMemAlloc calls made
}

// Stats returns the current counts.
func (a *Allocator) Stats() AllocStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AllocStats{Live: a.live, Peak: a.peak, Reserved: a.reserved, DriverAllocs: a.driverAllocs}
}

// ResetPeak sets Peak to the current Live (to measure one step's peak).
func (a *Allocator) ResetPeak() {
	a.mu.Lock()
	a.peak = a.live
	a.mu.Unlock()
}
