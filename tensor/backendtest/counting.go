package backendtest

import (
	"math"
	"sync"

	"github.com/ftune/ftune/tensor"
)

// Counting is the CPU backend with early release (tensor.StorageReleaser),
// standing in for a device in tests of memory lifetimes: it counts live
// bytes (allocated and not released; what Go's collector would free is not
// modelled, as on a GPU between collections) and poisons every storage it
// releases (NaN, or -1 in integers), so a release before a tensor's last
// use changes results instead of passing silently.
type Counting struct {
	*tensor.CPUBackend
	mu         sync.Mutex
	size       map[tensor.Storage]int64
	released   map[tensor.Storage]bool
	live, peak int64
}

// NewCounting returns a counting backend over the shared CPU backend.
func NewCounting() *Counting {
	return &Counting{CPUBackend: tensor.CPUDefault(), size: map[tensor.Storage]int64{}, released: map[tensor.Storage]bool{}}
}

func (c *Counting) track(st tensor.Storage, err error) (tensor.Storage, error) {
	if err != nil {
		return nil, err
	}
	n := int64(st.Len()) * int64(st.DType().Size())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.size[st] = n
	c.live += n
	c.peak = max(c.peak, c.live)
	return st, nil
}

func (c *Counting) Alloc(dt tensor.DType, n int) (tensor.Storage, error) {
	return c.track(c.CPUBackend.Alloc(dt, n))
}

func (c *Counting) FromHost(dt tensor.DType, data any) (tensor.Storage, error) {
	return c.track(c.CPUBackend.FromHost(dt, data))
}

// Release poisons st and stops counting it; releasing twice panics (a
// lifetime bug the test must see).
func (c *Counting) Release(st tensor.Storage) error {
	c.mu.Lock()
	if c.released[st] {
		c.mu.Unlock()
		panic("backendtest.Counting: storage released twice")
	}
	c.released[st] = true
	c.live -= c.size[st]
	c.mu.Unlock()
	v := math.NaN()
	if !st.DType().IsFloat() {
		v = -1
	}
	return c.CPUBackend.Fill(tensor.FromStorage(c, st, st.Len()), v)
}

// Released reports whether t's storage was released.
func (c *Counting) Released(t *tensor.Tensor) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released[t.Storage()]
}

// Live and Peak are the bytes allocated and not released, now and at most.
func (c *Counting) Live() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.live }
func (c *Counting) Peak() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.peak }

// ResetPeak sets Peak to Live (to measure one step).
func (c *Counting) ResetPeak() { c.mu.Lock(); c.peak = c.live; c.mu.Unlock() }
