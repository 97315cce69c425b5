package cudabackend

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Offload to pinned host memory (tensor.HostOffloader): gradient
// checkpointing's saved block inputs wait there between the forward and
// the backward (autograd's Tape.Offload).
//
// The copies run on a copy stream of their own, beside the kernels on the
// backend's stream, so that they overlap with compute; events order the
// two streams and the host never waits:
//
//   - to the host: the copy waits for the work queued before it on the
//     backend's stream (what wrote the value). The device block cannot go
//     back to the allocator at once, as the caller asks (Release): the
//     allocator hands blocks out in the backend's stream order, and the
//     copy is not in it. The storage waits in copier.copying until the
//     backend's stream is told to wait for the copy's end (settle): at the
//     next offload (the copy had one block's forward to run beside), the
//     next restore, or at an allocation once the copy has finished.
//   - back to the device: Prefetch allocates the storage and queues the
//     copy into it after the work queued so far (the block may have been
//     another value's); Restore makes the backend's stream wait for the
//     copy's end. autograd prefetches the value the backward needs next
//     when it restores one, so the copy runs while a block is computed
//     again and differentiated.
//
// The pinned buffers are pooled by size: pinning memory costs the driver
// milliseconds per call, and a training step offloads the same sizes every
// step. A buffer goes back to the pool once its copy back is queued (the
// next copy to the host that reuses it is queued after it on the same copy
// stream), or, if a step is dropped without its backward, when the
// collector finds the copy dead. The host never reads the buffers.
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

// copier is the copy stream and the bookkeeping that orders it with the
// backend's stream.
type copier struct {
	mu      sync.Mutex
	s       cuda.Stream // made at the first offload
	made    bool
	events  []cuda.Event // synchronization events, pooled
	copying []*storage   // offloaded storages whose copy to the host may still run
	pending atomic.Int32 // len(copying), read by Alloc without the lock
}

// stream returns the copy stream, making it the first time. Call with
// c.mu held.
func (c *copier) stream(d *cuda.Device) (cuda.Stream, error) {
	if !c.made {
		s, err := d.NewStream()
		if err != nil {
			return cuda.Stream{}, fmt.Errorf("copy stream: %w", err)
		}
		c.s, c.made = s, true
	}
	return c.s, nil
}

// event returns a pooled event. Call with c.mu held.
func (c *copier) event(d *cuda.Device) (cuda.Event, error) {
	if n := len(c.events); n > 0 {
		e := c.events[n-1]
		c.events = c.events[:n-1]
		return e, nil
	}
	return d.NewSyncEvent()
}

// after queues on stream to the work queued on from so far: an event
// recorded on from and waited for by to (the event goes back to the pool:
// the wait holds what it waits for). Call with c.mu held.
func (c *copier) after(d *cuda.Device, to, from cuda.Stream) error {
	e, err := c.event(d)
	if err != nil {
		return err
	}
	if err := d.Record(e, from); err != nil {
		return err
	}
	if err := d.WaitEvent(to, e); err != nil {
		return err
	}
	c.events = append(c.events, e)
	return nil
}

// settle makes the backend's stream wait for the copies to the host queued
// so far (all), or for those that have finished (the driver says so
// without waiting), and gives back the blocks the caller released
// meanwhile.
func (b *Backend) settle(all bool) error {
	c := &b.copier
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := make([]*storage, 0, len(c.copying))
	var first error
	for _, s := range c.copying {
		if first != nil {
			keep = append(keep, s)
			continue
		}
		if !all {
			done, err := b.dev.EventDone(s.copied)
			if err != nil || !done {
				first = err
				keep = append(keep, s)
				continue
			}
		}
		if err := b.dev.WaitEvent(b.s, s.copied); err != nil {
			first = err
			keep = append(keep, s)
			continue
		}
		c.events = append(c.events, s.copied)
		s.copying = false
		if s.released {
			if err := b.free(s); err != nil {
				first = err
			}
		}
	}
	c.copying = keep
	c.pending.Store(int32(len(keep)))
	return first
}

// pinnedCopy is one offloaded storage.
type pinnedCopy struct {
	b     *Backend
	dt    tensor.DType
	n     int // elements
	bytes int64
	h     *cuda.HostBuffer // nil once the copy back is queued
	// back is the storage the copy back writes, done its end on the copy
	// stream (set by Prefetch, taken by Restore).
	back    *storage
	done    cuda.Event
	cleanup runtime.Cleanup
}

// OffloadToHost queues st's elements into a pinned buffer on the copy
// stream (see above). NF4 storages (codes and scales in two blocks) are
// refused: only weights are NF4, and they stay on the device.
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
	case s.copying:
		return nil, fmt.Errorf("cuda: offload of a storage already being offloaded (%d x %v)", s.n, s.dt)
	}
	// The previous offload's copy had this block's forward to run beside.
	if err := b.settle(true); err != nil {
		return nil, fmt.Errorf("cuda: offload %d x %v: %w", s.n, s.dt, err)
	}
	bytes := s.n * s.dt.Size()
	h, err := b.pinned.get(b.dev, bytes)
	if err != nil {
		return nil, fmt.Errorf("cuda: offload %d x %v: %w", s.n, s.dt, err)
	}
	if err := b.queueToHost(s, h); err != nil {
		b.pinned.put(h)
		return nil, fmt.Errorf("cuda: offload %d x %v: %w", s.n, s.dt, err)
	}
	pc := &pinnedCopy{b: b, dt: s.dt, n: s.n, bytes: int64(bytes), h: h}
	pool := &b.pinned
	pc.cleanup = runtime.AddCleanup(pc, func(h *cuda.HostBuffer) { pool.put(h) }, h)
	return pc, nil
}

// queueToHost queues the copy of s into h on the copy stream, after the
// work queued on the backend's stream, and holds s in copier.copying.
func (b *Backend) queueToHost(s *storage, h *cuda.HostBuffer) error {
	c := &b.copier
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err := c.stream(b.dev)
	if err != nil {
		return err
	}
	if err := c.after(b.dev, cs, b.s); err != nil {
		return err
	}
	copied, err := c.event(b.dev)
	if err != nil {
		return err
	}
	if err := cuda.CopyDtoHAsync(b.dev, cs, h.Bytes, s.p); err != nil {
		c.events = append(c.events, copied)
		return err
	}
	if err := b.dev.Record(copied, cs); err != nil {
		return err
	}
	s.copying, s.copied = true, copied
	c.copying = append(c.copying, s)
	c.pending.Store(int32(len(c.copying)))
	return nil
}

func (c *pinnedCopy) Bytes() int64 { return c.bytes }

// prefetched is what a dropped prefetch leaves: the backend's stream must
// wait for the copy before the storage's block is handed out again.
type prefetched struct {
	b    *Backend
	st   *storage
	done cuda.Event
}

// Prefetch allocates the device storage and queues the copy back into it
// on the copy stream; the pinned buffer returns to the pool.
func (c *pinnedCopy) Prefetch() error {
	if c.h == nil {
		return nil // prefetched or restored already
	}
	b := c.b
	if err := b.settle(true); err != nil {
		return fmt.Errorf("cuda: restore %d x %v: %w", c.n, c.dt, err)
	}
	st, err := b.Alloc(c.dt, c.n)
	if err != nil {
		return err
	}
	s := st.(*storage)
	done, err := b.queueToDevice(s, c.h)
	if err != nil {
		_ = b.Release(st)
		return fmt.Errorf("cuda: restore %d x %v: %w", c.n, c.dt, err)
	}
	c.cleanup.Stop()
	b.pinned.put(c.h)
	c.h, c.back, c.done = nil, s, done
	c.cleanup = runtime.AddCleanup(c, func(p prefetched) {
		// Dropped before its Restore (a step abandoned mid-backward).
		if p.b.waitCopy(p.done) == nil {
			_ = p.b.Release(p.st)
		}
	}, prefetched{b, s, done})
	return nil
}

// queueToDevice queues the copy of h into s on the copy stream, after the
// work queued on the backend's stream (s's block may have been another
// storage's), and returns the event of its end.
func (b *Backend) queueToDevice(s *storage, h *cuda.HostBuffer) (cuda.Event, error) {
	c := &b.copier
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err := c.stream(b.dev)
	if err != nil {
		return cuda.Event{}, err
	}
	if err := c.after(b.dev, cs, b.s); err != nil {
		return cuda.Event{}, err
	}
	done, err := c.event(b.dev)
	if err != nil {
		return cuda.Event{}, err
	}
	if err := cuda.CopyHtoDAsync(b.dev, cs, s.p, h.Bytes); err != nil {
		c.events = append(c.events, done)
		return cuda.Event{}, err
	}
	if err := b.dev.Record(done, cs); err != nil {
		return cuda.Event{}, err
	}
	return done, nil
}

// waitCopy makes the backend's stream wait for a copy back's end; the
// event returns to the pool.
func (b *Backend) waitCopy(done cuda.Event) error {
	c := &b.copier
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := b.dev.WaitEvent(b.s, done); err != nil {
		return err
	}
	c.events = append(c.events, done)
	return nil
}

// Restore returns the storage the copy back writes (prefetching it first
// if Prefetch was not called); work queued on the backend's stream from
// now on waits for the copy.
func (c *pinnedCopy) Restore() (tensor.Storage, error) {
	if c.h == nil && c.back == nil {
		return nil, fmt.Errorf("cuda: host copy of %d x %v restored twice", c.n, c.dt)
	}
	if err := c.Prefetch(); err != nil {
		return nil, err
	}
	if err := c.b.waitCopy(c.done); err != nil {
		return nil, fmt.Errorf("cuda: restore %d x %v: %w", c.n, c.dt, err)
	}
	c.cleanup.Stop()
	st := c.back
	c.back = nil
	return st, nil
}
