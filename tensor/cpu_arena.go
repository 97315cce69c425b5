package tensor

import (
	"fmt"
	"math"
	"os"
	"sync"
)

// Arena recycles the large float32 buffers of a training step on the CPU
// backend. Go zeroes every large allocation before handing it out; in a
// training step that is a serial memclr over every activation and
// gradient, ~6% of a tiny-base step's CPU time and ~10% of its wall time
// on two cores, where the other core waits. A step allocates the same
// shapes every time, so the arena hands the previous step's buffers out
// again, unzeroed (New's contract: uninitialised).
//
// The contract is a scope: CPUBackend.SetArena(a) routes allocations of
// at least ArenaMinLen float32 to a until SetArena(nil); a.Reset() declares
// every tensor allocated from a since the previous Reset dead, and their
// buffers reusable. Values that must outlive the step (parameter
// gradients) are copied out with Persist. With FTUNE_ARENA_CHECK=1 in the
// environment, Reset fills recycled buffers with NaN so a use after Reset
// shows up in results instead of passing silently.
//
// The arena holds one step's allocations until Reset (Go's collector could
// reuse a dead activation's memory within the step), so it is for steps
// without gradient checkpointing, whose point is a smaller peak. Its free
// lists also keep every capacity class it has ever served, so when batch
// shapes vary (padding trimmed per batch) it grows past one step's worth:
// 2.5x the peak RSS of the heap path on tiny-base after 20 steps (2.6 GiB
// against 1.0 GiB), which is why training.step_arena is off by default.
type Arena struct {
	mu     sync.Mutex
	free   map[int][][]float32 // by capacity class, buffers free to hand out
	live   [][]float32         // handed out since the last Reset
	poison bool

	reused, fresh int64 // buffers handed out since NewArena, by origin
}

// ArenaMinLen is the smallest float32 allocation an arena serves: below
// Go's large-object size (32 KiB) its allocator is cheap.
const ArenaMinLen = 8192

// NewArena returns an empty arena.
func NewArena() *Arena {
	return &Arena{free: map[int][][]float32{}, poison: os.Getenv("FTUNE_ARENA_CHECK") == "1"}
}

// arenaClass rounds n up to a capacity class: 8 classes per power of two,
// so a buffer serves any length within 12.5% below its capacity (lengths
// that vary a little between steps still reuse buffers).
func arenaClass(n int) int {
	if n <= 16 {
		return n
	}
	shift := 0
	for v := n - 1; v >= 16; v >>= 1 {
		shift++
	}
	step := 1 << shift // n-1 is in [8·step, 16·step)
	return (n + step - 1) / step * step
}

func (a *Arena) get(n int) []float32 {
	c := arenaClass(n)
	a.mu.Lock()
	defer a.mu.Unlock()
	var buf []float32
	if l := a.free[c]; len(l) > 0 {
		buf = l[len(l)-1]
		a.free[c] = l[:len(l)-1]
		a.reused++
	} else {
		buf = make([]float32, c)
		a.fresh++
	}
	a.live = append(a.live, buf)
	return buf[:n]
}

// Reset makes every buffer handed out since the previous Reset reusable.
// Buffers that sat free through the whole step that ends here are dropped
// to the garbage collector, so the arena holds about one step's worth.
func (a *Arena) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.free)
	for _, b := range a.live {
		if a.poison {
			nan := float32(math.NaN())
			for i := range b {
				b[i] = nan
			}
		}
		c := cap(b)
		a.free[c] = append(a.free[c], b[:c])
	}
	clear(a.live)
	a.live = a.live[:0]
}

// Release drops every buffer, live or free, to the garbage collector; the
// arena stays usable. Tensors from it stay valid (they are no longer
// recycled).
func (a *Arena) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.free)
	clear(a.live)
	a.live = a.live[:0]
}

// Stats reports how many buffers the arena handed out again and how many
// it had to allocate, since NewArena.
func (a *Arena) Stats() (reused, fresh int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reused, a.fresh
}

// SetArena routes this backend's large float32 allocations to a (nil:
// back to the garbage-collected heap) and returns the previous arena. The
// backend is shared by everything that uses it: while an arena is set,
// every goroutine's allocations on it go there and die at the next Reset.
// A training loop therefore claims the backend first (ClaimArena), so a
// second one in the same process is refused instead of recycling the
// first one's live tensors.
func (c *CPUBackend) SetArena(a *Arena) (prev *Arena) {
	return c.arena.Swap(a)
}

// ClaimArena reserves the backend for a's scopes (SetArena) until
// ReleaseArena(a). It fails while another arena holds the claim: two
// training loops sharing a backend would each Reset the other's
// micro-batch tensors.
func (c *CPUBackend) ClaimArena(a *Arena) error {
	if a == nil {
		return fmt.Errorf("cpu: ClaimArena(nil)")
	}
	if !c.arenaOwner.CompareAndSwap(nil, a) {
		return fmt.Errorf("cpu: the backend's step arena is held by another training loop in this process (each Reset would recycle the other's live tensors)")
	}
	return nil
}

// ReleaseArena ends a's claim (a no-op when a does not hold it) and routes
// allocations back to the heap if a was still set.
func (c *CPUBackend) ReleaseArena(a *Arena) {
	if c.arenaOwner.CompareAndSwap(a, nil) {
		c.arena.CompareAndSwap(a, nil)
	}
}

// Persist returns t when it is contiguous and not arena memory (or not on
// the CPU), else a contiguous copy allocated outside any arena: for values
// that outlive the step, such as parameter gradients. With copy set it
// always copies (for a tensor that others may still write).
func Persist(t *Tensor, copy bool) *Tensor {
	s, ok := t.st.(*cpuStorage)
	if !ok {
		if copy || !t.IsContiguous() {
			return t.Clone()
		}
		return t
	}
	if !copy && !s.arena && t.IsContiguous() {
		return t
	}
	c, _ := t.b.(*CPUBackend)
	if c == nil || c.arena.Load() == nil {
		return t.Clone()
	}
	out := &Tensor{b: t.b, st: newCPUStorage(t.dtype, t.Numel()), dtype: t.dtype, shape: t.shape.Clone(), strides: ContiguousStrides(t.shape)}
	check(t.b.Copy(out, t))
	return out
}
