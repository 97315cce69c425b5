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
	// Host: values offloaded to "host memory" (tensor.HostOffloader), now
	// and at most; plain CPU tensors, not counted in live.
	host, hostPeak int64
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

// OffloadToHost copies st into an uncounted CPU tensor, standing in for a
// device's pinned host memory (tensor.HostOffloader), and counts its bytes
// as host bytes. st stays as it was (the caller releases it).
func (c *Counting) OffloadToHost(st tensor.Storage) (tensor.HostCopy, error) {
	c.mu.Lock()
	released := c.released[st]
	c.mu.Unlock()
	if released {
		panic("backendtest.Counting: offload of a released storage")
	}
	n := st.Len()
	host := tensor.New(c.CPUBackend, st.DType(), n)
	if err := c.CPUBackend.Copy(host, tensor.FromStorage(c.CPUBackend, st, n)); err != nil {
		return nil, err
	}
	b := int64(n) * int64(st.DType().Size())
	c.mu.Lock()
	c.host += b
	c.hostPeak = max(c.hostPeak, c.host)
	c.mu.Unlock()
	return &countedCopy{c: c, host: host, bytes: b}, nil
}

type countedCopy struct {
	c     *Counting
	host  *tensor.Tensor
	back  tensor.Storage // prefetched, not yet restored
	bytes int64
}

func (h *countedCopy) Bytes() int64 { return h.bytes }

// Prefetch allocates a counted storage and copies the value back: it
// counts from now, as a GPU's prefetched storage does.
func (h *countedCopy) Prefetch() error {
	if h.host == nil {
		return nil // prefetched or restored already
	}
	n := h.host.Numel()
	st, err := h.c.Alloc(h.host.DType(), n)
	if err != nil {
		return err
	}
	if err := h.c.CPUBackend.Copy(tensor.FromStorage(h.c.CPUBackend, st, n), h.host); err != nil {
		return err
	}
	h.host, h.back = nil, st
	h.c.mu.Lock()
	h.c.host -= h.bytes
	h.c.mu.Unlock()
	return nil
}

// Restore returns the prefetched storage, prefetching first if needed.
func (h *countedCopy) Restore() (tensor.Storage, error) {
	if h.host == nil && h.back == nil {
		panic("backendtest.Counting: host copy restored twice")
	}
	if err := h.Prefetch(); err != nil {
		return nil, err
	}
	st := h.back
	h.back = nil
	return st, nil
}

// Host and HostPeak are the bytes offloaded and not restored, now and at
// most.
func (c *Counting) Host() int64     { c.mu.Lock(); defer c.mu.Unlock(); return c.host }
func (c *Counting) HostPeak() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.hostPeak }

// Released reports whether t's storage was released.
func (c *Counting) Released(t *tensor.Tensor) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released[t.Storage()]
}

// Live and Peak are the bytes allocated and not released, now and at most.
func (c *Counting) Live() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.live }
func (c *Counting) Peak() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.peak }

// ResetPeak sets Peak to Live and HostPeak to Host (to measure one step).
func (c *Counting) ResetPeak() {
	c.mu.Lock()
	c.peak, c.hostPeak = c.live, c.host
	c.mu.Unlock()
}
