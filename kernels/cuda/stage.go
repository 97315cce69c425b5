package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Stager queues host-to-device copies on one stream without making the
// host wait for the GPU. By the driver API's synchronization rules a copy
// from ordinary (pageable) Go memory with cuMemcpyHtoD first waits for all
// the work queued before it, and cuMemcpyHtoDAsync from pageable memory
// may do the same. An upload in the middle of a training step (a batch's
// shifted labels, its RoPE tables) would then drain the GPU's queue and
// leave it idle while the host queues the next kernels. The stager copies
// the data into pinned memory first and queues the copy from there, which
// the driver runs fully asynchronously.
//
// Pinned memory comes in slabs (the slab size, or a power of two times it
// for a larger copy), filled front to back. When a copy does not
// fit in the current slab, an event is recorded after that slab's last
// copy, and the slab is reused only once the event has happened. Slabs are
// allocated as needed up to a budget; past it the host waits for the
// oldest slab's copies (it is then that many bytes of uploads ahead of the
// GPU). A copy larger than a quarter of the budget is queued from the
// caller's memory with cuMemcpyHtoDAsync, which may wait.
type Stager struct {
	d              *Device
	s              Stream
	slabBytes, max int

	mu     sync.Mutex
	cur    *slab
	busy   []*slab // retired: reused once done has happened
	free   []*slab
	pinned int // bytes in all slabs
}

type slab struct {
	h    *HostBuffer
	used int
	done Event // recorded after the slab's last copy when it is retired
}

// Default slab size and pinned budget of NewStager.
const (
	StageSlabBytes = 4 << 20
	StageMaxBytes  = 64 << 20
)

// stageAlign keeps every staged copy's source 256-byte aligned, the DMA
// engines' preferred alignment.
const stageAlign = 256

// NewStager returns a stager for copies queued on s, with slabs of
// slabBytes (at least; a larger copy gets a slab of its size) and at most
// maxBytes of pinned memory.
func (d *Device) NewStager(s Stream, slabBytes, maxBytes int) (*Stager, error) {
	if slabBytes <= 0 || maxBytes < slabBytes {
		return nil, badArg("NewStager: slabs of %d bytes within %d", slabBytes, maxBytes)
	}
	return &Stager{d: d, s: s, slabBytes: slabBytes, max: maxBytes}, nil
}

// QueueHtoD queues a copy of src to dst on s without waiting for the work
// queued before it, and src may be reused as soon as it returns. On the
// legacy default stream (the backend's) it goes through the device's
// Stager; on another stream it is cuMemcpyHtoDAsync from src.
func QueueHtoD[T any](d *Device, s Stream, dst Ptr, src []T) error {
	if s.h != 0 {
		return CopyHtoDAsync(d, s, dst, src)
	}
	d.stageOnce.Do(func() { d.stager, d.stageErr = d.NewStager(Stream{}, StageSlabBytes, StageMaxBytes) })
	if d.stageErr != nil {
		return d.stageErr
	}
	return StageHtoD(d.stager, dst, src)
}

// PinnedBytes is the pinned memory the stager holds.
func (st *Stager) PinnedBytes() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.pinned
}

// StageHtoD queues a copy of src to dst on the stager's stream; src may be
// reused as soon as it returns.
func StageHtoD[T any](st *Stager, dst Ptr, src []T) error {
	p, n := byteView(src)
	if n == 0 {
		return nil
	}
	if n > st.max/4 {
		return CopyHtoDAsync(st.d, st.s, dst, src)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	buf, err := st.take(n)
	if err != nil {
		return fmt.Errorf("staging %d bytes: %w", n, err)
	}
	copy(buf, unsafe.Slice((*byte)(p), n))
	runtime.KeepAlive(src)
	return CopyHtoDAsync(st.d, st.s, dst, buf)
}

// take returns n bytes of pinned memory that no queued copy still reads.
// Call with st.mu held.
func (st *Stager) take(n int) ([]byte, error) {
	if c := st.cur; c != nil && c.used+n <= len(c.h.Bytes) {
		return st.carve(c, n), nil
	}
	if c := st.cur; c != nil {
		if err := st.d.Record(c.done, st.s); err != nil {
			return nil, err
		}
		st.busy = append(st.busy, c)
		st.cur = nil
	}
	if err := st.reclaim(false); err != nil {
		return nil, err
	}
	for {
		for i, c := range st.free {
			if len(c.h.Bytes) >= n {
				st.free = append(st.free[:i], st.free[i+1:]...)
				st.cur = c
				return st.carve(c, n), nil
			}
		}
		// Sizes are powers of two times the slab size, so that slabs made
		// for one large copy (a weight at load) serve the next ones.
		size := st.slabBytes
		for size < n {
			size *= 2
		}
		// Free slabs too small for n make room for one that fits.
		for len(st.free) > 0 && st.pinned+size > st.max {
			if err := st.release(st.free[0]); err != nil {
				return nil, err
			}
			st.free = st.free[1:]
		}
		if st.pinned+size <= st.max {
			c, err := st.newSlab(size)
			if err != nil {
				return nil, err
			}
			st.cur = c
			return st.carve(c, n), nil
		}
		// The budget is in slabs whose copies are still queued: wait for
		// the oldest.
		if err := st.reclaim(true); err != nil {
			return nil, err
		}
	}
}

// carve takes n bytes from the front of c's unused part.
func (st *Stager) carve(c *slab, n int) []byte {
	b := c.h.Bytes[c.used : c.used+n : c.used+n]
	c.used += (n + stageAlign - 1) / stageAlign * stageAlign
	return b
}

// reclaim moves retired slabs whose copies have run to the free list; with
// wait, it first waits for the oldest one.
func (st *Stager) reclaim(wait bool) error {
	if wait && len(st.busy) > 0 {
		if err := st.d.SyncEvent(st.busy[0].done); err != nil {
			return err
		}
	}
	kept := st.busy[:0]
	for i, c := range st.busy {
		ok := wait && i == 0
		if !ok {
			var err error
			if ok, err = st.d.EventDone(c.done); err != nil {
				return err
			}
		}
		if ok {
			c.used = 0
			st.free = append(st.free, c)
		} else {
			kept = append(kept, c)
		}
	}
	st.busy = kept
	return nil
}

func (st *Stager) newSlab(size int) (*slab, error) {
	h, err := st.d.HostAlloc(size)
	if err != nil {
		return nil, err
	}
	e, err := st.d.NewSyncEvent()
	if err != nil {
		_ = h.Free()
		return nil, err
	}
	st.pinned += size
	return &slab{h: h, done: e}, nil
}

func (st *Stager) release(c *slab) error {
	st.pinned -= len(c.h.Bytes)
	if err := c.h.Free(); err != nil {
		return err
	}
	return st.d.DestroyEvent(c.done)
}

// Close waits for the queued copies and frees the pinned memory.
func (st *Stager) Close() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.d.SyncStream(st.s); err != nil {
		return err
	}
	all := append(append(st.free, st.busy...), st.cur)
	st.free, st.busy, st.cur = nil, nil, nil
	for _, c := range all {
		if c == nil {
			continue
		}
		if err := st.release(c); err != nil {
			return err
		}
	}
	return nil
}
