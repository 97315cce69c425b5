package tensor

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"runtime"
	"sort"
	"sync"
)

// The CPU pool recycles the large float32 buffers of a training step.
//
// Why: Go zeroes every large allocation, and a step allocates its
// activations and gradients afresh each time, so without recycling a step
// spends a serial memclr over all of them plus, once the runtime's
// scavenger has returned the previous step's pages to the kernel, a page
// fault per 4 KiB touched. Measured on the main job (tiny-base, 2 cores):
// 16% of its time in page faults and 12% in memclr, the step 1.8× slower
// than with recycled memory (bench/results/cpu-pool-2026-12-06.md).
//
// How: the pool is driven by the same lifetimes that give a GPU's
// activations back to its caching allocator. A storage released with
// Release (autograd's Tape.ReleaseActivations, the trainer's gradients and
// batches) goes into the pool while it is held (UseCPUPool), and inside a
// serving scope (ServeFromCPUPool: the trainer's micro-batches and
// validation batches, whose forwards run on inference tapes that release
// what they read: autograd.NewInference) an Alloc of a float32 tensor of
// at least PoolMinLen elements takes the smallest free buffer that holds
// it and is at most PoolMaxWaste times its size. Outside one allocations
// stay on the heap, so that work which releases nothing (a forward on a
// nil tape) does not drain the pool into garbage. A buffer nothing
// releases is the collector's, as before: a lifetime the tape does not
// know costs speed, never correctness. Buffers come back unzeroed (New's
// contract: uninitialised). Fresh buffers are made a size class larger
// (four classes per doubling) so that a slightly longer batch fits the
// buffers of the one before. TrimCPUPool, which the trainer calls once per
// optimizer step, drops the buffers that sat free through a whole step, so
// the pool keeps about the largest step's worth of what a step frees.
//
// With FTUNE_POOL_CHECK=1 in the environment, released buffers are filled
// with NaN before they are handed out again, so a read of a released
// tensor through a slice taken before its release shows up in results.
// (Through its tensor it cannot happen: Release detaches the storage's
// memory, and any later use of it panics.)
type cpuPool struct {
	mu      sync.Mutex
	users   int        // UseCPUPool holders; 0: off, Release recycles nothing
	serving int        // ServeFromCPUPool scopes open; 0: Alloc takes nothing
	free    []poolItem // sorted by capacity
	gen     uint64     // TrimCPUPool calls so far
	cached  int64      // bytes in free
	poison  bool

	reused, fresh, recycled int64
}

type poolItem struct {
	buf []float32 // len == cap
	gen uint64    // pool.gen when it was released
}

// PoolMinLen is the smallest float32 allocation the pool serves: below Go's
// large-object size (32 KiB) its allocator is cheap.
const PoolMinLen = 8192

// PoolMaxWaste bounds how much larger than a request a recycled buffer may
// be: a step whose batch is shorter than the last one's reuses the last
// one's buffers rather than letting them go (the pool then holds about
// the longest step's buffers, what that step needs anyway), but a small
// tensor does not take a buffer a larger one of the same step needs.
const PoolMaxWaste = 4

var cpuPoolState = &cpuPool{poison: os.Getenv("FTUNE_POOL_CHECK") == "1"}

// SetCPUPoolCheck turns FTUNE_POOL_CHECK's poisoning on or off (for tests
// that train with it) and returns the previous setting.
func SetCPUPoolCheck(on bool) (prev bool) {
	p := cpuPoolState
	p.mu.Lock()
	defer p.mu.Unlock()
	prev, p.poison = p.poison, on
	return prev
}

// UseCPUPool turns recycling of released CPU storage on until every caller
// has called the returned func; the last one drops the pool's free buffers
// to the collector. The trainer holds it while it fits a model on the CPU.
//
// When what it drops is large (dropCollectMin or more: a training's
// step buffers at the end of Fit), it runs a collection then, so that
// what comes next (the evaluation after training, saving) reuses their
// memory instead of growing the heap into new pages: the collector's
// goal, set while they were live, would let the heap grow by their size
// again before it collected them (on tiny-base, the run's peak RSS rose
// by about 30 MiB in the evaluation after training).
func UseCPUPool() (done func()) {
	p := cpuPoolState
	var dropped int64
	end := p.open(&p.users, func() {
		dropped = p.cached
		p.dropLocked(func(poolItem) bool { return true })
	})
	return func() {
		end()
		if dropped >= dropCollectMin {
			dropped = 0
			runtime.GC()
		}
	}
}

// dropCollectMin is how many bytes the pool's last holder drops before
// UseCPUPool's done runs a collection.
const dropCollectMin = 32 << 20

// ServeFromCPUPool makes CPU allocations take released buffers until end
// is called (the pool must be held: UseCPUPool). The trainer opens one for
// each micro-batch, whose tape releases what it allocates.
func ServeFromCPUPool() (end func()) {
	p := cpuPoolState
	return p.open(&p.serving, func() {})
}

// open counts one more holder in *n and returns the func that counts it
// out, once, running last (under the lock) when none is left.
func (p *cpuPool) open(n *int, last func()) func() {
	p.mu.Lock()
	*n++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if *n--; *n == 0 {
				last()
			}
		})
	}
}

// TrimCPUPool drops the free buffers that nothing took since the previous
// call: called once per optimizer step, it keeps the pool to the sizes the
// steps still ask for.
func TrimCPUPool() {
	p := cpuPoolState
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked(func(it poolItem) bool { return it.gen < p.gen })
	p.gen++
}

func (p *cpuPool) dropLocked(drop func(poolItem) bool) {
	kept := p.free[:0]
	for _, it := range p.free {
		if drop(it) {
			p.cached -= int64(cap(it.buf)) * 4
			continue
		}
		kept = append(kept, it)
	}
	clear(p.free[len(kept):])
	p.free = kept
}

// take returns a free buffer of n elements (its capacity within
// PoolMaxWaste of n); when it has none, serving says whether a serving
// scope is open (the caller then makes a buffer of a size class).
func (p *cpuPool) take(n int) (buf []float32, serving bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.users == 0 || p.serving == 0 {
		return nil, false
	}
	i := sort.Search(len(p.free), func(i int) bool { return cap(p.free[i].buf) >= n })
	if i == len(p.free) || cap(p.free[i].buf) > PoolMaxWaste*n {
		p.fresh++
		return nil, true
	}
	buf = p.free[i].buf
	p.free = append(p.free[:i], p.free[i+1:]...)
	p.cached -= int64(cap(buf)) * 4
	p.reused++
	return buf[:n], true
}

// poolClass rounds n up to a size class, four per doubling: the capacity
// the pool gives a fresh buffer.
func poolClass(n int) int {
	p := 1 << (bits.Len(uint(n)) - 1)
	step := max(p/4, 1)
	return (n + step - 1) / step * step
}

// put takes a released buffer in, when the pool is on.
func (p *cpuPool) put(buf []float32) {
	buf = buf[:cap(buf)]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.users == 0 {
		return
	}
	if p.poison {
		nan := float32(math.NaN())
		for i := range buf {
			buf[i] = nan
		}
	}
	i := sort.Search(len(p.free), func(i int) bool { return cap(p.free[i].buf) >= len(buf) })
	p.free = append(p.free, poolItem{})
	copy(p.free[i+1:], p.free[i:])
	p.free[i] = poolItem{buf: buf, gen: p.gen}
	p.cached += int64(len(buf)) * 4
	p.recycled++
}

// CPUPoolStats are the pool's counts since the process started.
type CPUPoolStats struct {
	Reused   int64 // allocations served from a released buffer
	Fresh    int64 // allocations the pool could not serve (made on the heap)
	Recycled int64 // released buffers taken in
	Cached   int64 // bytes free in the pool now
}

// CPUPoolCounts returns the pool's counts.
func CPUPoolCounts() CPUPoolStats {
	p := cpuPoolState
	p.mu.Lock()
	defer p.mu.Unlock()
	return CPUPoolStats{Reused: p.reused, Fresh: p.fresh, Recycled: p.recycled, Cached: p.cached}
}

// Release gives st's memory back now (StorageReleaser): its float32 buffer
// to the pool when the pool is on and Alloc made it, and in every case the
// storage lets go of its memory, so a later use of any view of it fails
// instead of reading a buffer someone else now writes.
func (c *CPUBackend) Release(st Storage) error {
	s, ok := st.(*cpuStorage)
	if !ok {
		return fmt.Errorf("cpu: Release of a %T", st)
	}
	if s.released {
		return fmt.Errorf("cpu: storage of %d %v released twice", s.n, s.dt)
	}
	s.n = s.Len()
	s.released = true
	if s.owned && s.dt == F32 && cap(s.f32) >= PoolMinLen {
		cpuPoolState.put(s.f32)
	}
	s.f32, s.f64, s.u16, s.i32, s.i64, s.nf4 = nil, nil, nil, nil, nil, nil
	return nil
}
