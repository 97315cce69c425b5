package cudabackend

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Offload to pinned host memory (tensor.HostOffloader): gradient
// checkpointing's saved block inputs wait there between the forward and
// the backward (autograd's Tape.Offload).
//
// Both copies are queued on the backend's one stream, like every kernel:
// the device-to-host copy runs after the work that wrote the storage and
// before any later reuse of its block (the caller releases it at once),
// and the host-to-device copy runs before the kernels that read the
// restored tensor, so neither direction waits on the host. The cost is
// that the copies do not overlap with compute (one stream); a copy stream
// with events would hide them, and is the next step.
//
// The pinned buffers are pooled by size: pinning memory costs the driver
// milliseconds per call, and a training step offloads the same sizes every
// step. A buffer goes back to the pool when its copy is restored (the
// later device-to-host copy that reuses it is queued after the
// host-to-device one that read it), or, if a step is dropped without its
// backward, when the collector finds the copy dead. The host never reads
// the buffers.
type pinnedPool struct {
	mu   sync.Mutex
	free map[int][]*cuda.HostBuffer
	held int64 // bytes of pinned memory allocated, pooled or in use
}

func (p *pinnedPool) get(d *cuda.Device, n int) (*cuda.HostBuffer, error) {
	p.mu.Lock()
	if l := p.free[n]; len(l) > 0 {
		h := l[len(l)-1]
		p.free[n] = l[:len(l)-1]
		p.mu.Unlock()
		return h, nil
	}
	p.mu.Unlock()
	h, err := d.HostAlloc(n)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.held += int64(n)
	p.mu.Unlock()
	return h, nil
}

func (p *pinnedPool) put(h *cuda.HostBuffer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.free == nil {
		p.free = map[int][]*cuda.HostBuffer{}
	}
	p.free[len(h.Bytes)] = append(p.free[len(h.Bytes)], h)
}

// PinnedBytes is the pinned host memory the backend holds for offloaded
// values (in use or pooled for the next step).
func (b *Backend) PinnedBytes() int64 {
	b.pinned.mu.Lock()
	defer b.pinned.mu.Unlock()
	return b.pinned.held
}

// pinnedCopy is one offloaded storage.
type pinnedCopy struct {
	b       *Backend
	dt      tensor.DType
	n       int // elements
	h       *cuda.HostBuffer
	cleanup runtime.Cleanup
}

// OffloadToHost queues st's elements into a pinned buffer (see above).
// NF4 storages (codes and scales in two blocks) are refused: only weights
// are NF4, and they stay on the device.
func (b *Backend) OffloadToHost(st tensor.Storage) (tensor.HostCopy, error) {
	s, ok := st.(*storage)
	switch {
	case !ok || s.b != b:
		return nil, fmt.Errorf("cuda: offload of a storage not on backend %s", b.Name())
	case s.released:
		return nil, fmt.Errorf("cuda: offload of a released storage (%d x %v)", s.n, s.dt)
	case s.dt == tensor.NF4 || s.absmax != 0:
		return nil, fmt.Errorf("cuda: %w: offload of an NF4 storage", tensor.ErrUnsupported)
	case s.n == 0:
		return nil, fmt.Errorf("cuda: offload of an empty storage")
	}
	bytes := s.n * s.dt.Size()
	h, err := b.pinned.get(b.dev, bytes)
	if err != nil {
		return nil, fmt.Errorf("cuda: offload %d x %v: %w", s.n, s.dt, err)
	}
	if err := cuda.CopyDtoHAsync(b.dev, b.s, h.Bytes, s.p); err != nil {
		b.pinned.put(h)
		return nil, fmt.Errorf("cuda: offload %d x %v: %w", s.n, s.dt, err)
	}
	runtime.KeepAlive(s) // its block is not freed before the copy is queued
	c := &pinnedCopy{b: b, dt: s.dt, n: s.n, h: h}
	pool := &b.pinned
	c.cleanup = runtime.AddCleanup(c, func(h *cuda.HostBuffer) { pool.put(h) }, h)
	return c, nil
}

func (c *pinnedCopy) Bytes() int64 { return int64(len(c.h.Bytes)) }

// Restore allocates a device storage and queues the copy back into it; the
// pinned buffer returns to the pool.
func (c *pinnedCopy) Restore() (tensor.Storage, error) {
	if c.h == nil {
		return nil, fmt.Errorf("cuda: host copy of %d x %v restored twice", c.n, c.dt)
	}
	st, err := c.b.Alloc(c.dt, c.n)
	if err != nil {
		return nil, err
	}
	s := st.(*storage)
	if err := cuda.CopyHtoDAsync(c.b.dev, c.b.s, s.p, c.h.Bytes); err != nil {
		_ = c.b.Release(st)
		return nil, fmt.Errorf("cuda: restore %d x %v: %w", c.n, c.dt, err)
	}
	c.cleanup.Stop()
	c.b.pinned.put(c.h)
	c.h = nil
	return st, nil
}
