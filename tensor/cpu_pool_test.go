package tensor

import (
	"math"
	"strings"
	"testing"
)

// usePool turns the pool on for one test, poisoned and serving, and
// empties it after.
func usePool(t *testing.T) {
	t.Helper()
	done := UseCPUPool()
	end := ServeFromCPUPool()
	prev := SetCPUPoolCheck(true)
	t.Cleanup(func() { SetCPUPoolCheck(prev); end(); done() })
}

func firstOf(x *Tensor) *float32 { return &x.st.(*cpuStorage).f32[:1][0] }

// TestCPUPoolRecyclesReleasedBuffers: a released float32 buffer serves the
// next allocation it fits (best fit, at most PoolMaxWaste times larger)
// inside a serving scope only, poisoned with NaN; small, float64 and
// FromHost storages are never recycled; a buffer nothing asked for through
// a whole trim interval is dropped.
func TestCPUPoolRecyclesReleasedBuffers(t *testing.T) {
	usePool(t)
	c := CPUDefault()
	before := CPUPoolCounts()

	big := New(c, F32, (PoolMaxWaste+1)*PoolMinLen)
	mid := New(c, F32, 2*PoolMinLen)
	data := F32Data(mid)
	for i := range data {
		data[i] = 1
	}
	bigAt, midAt := firstOf(big), firstOf(mid)
	small := New(c, F32, 16)
	wide := New(c, F64, 2*PoolMinLen)
	wrapped := FromHost(c, F32, make([]float32, 2*PoolMinLen), 2*PoolMinLen)
	for _, x := range []*Tensor{big, mid, small, wide, wrapped} {
		if err := Release(x); err != nil {
			t.Fatal(err)
		}
	}
	if got := CPUPoolCounts().Recycled - before.Recycled; got != 2 {
		t.Fatalf("recycled %d buffers, want 2 (only the large float32 ones Alloc made)", got)
	}
	// Poisoned: a slice kept past the release reads NaN, not stale ones.
	if !math.IsNaN(float64(data[5])) {
		t.Fatalf("a released element reads %v, want NaN (FTUNE_POOL_CHECK)", data[5])
	}
	// Outside a serving scope (a forward whose tensors nothing releases)
	// allocations stay on the heap, so they do not drain the pool.
	end := ServeFromCPUPool()
	end()
	end() // once only: the test's own scope stays open
	if got := CPUPoolCounts(); got.Reused != before.Reused {
		t.Fatal("a closed scope's second end closed another")
	}
	// Best fit: 2·PoolMinLen−100 takes mid's buffer, not big's.
	y := New(c, F32, 2*PoolMinLen-100)
	if firstOf(y) != midAt || y.Numel() != 2*PoolMinLen-100 {
		t.Fatal("the request did not take the smallest buffer that holds it")
	}
	// More than PoolMaxWaste times smaller than every free buffer: fresh,
	// with a size class's capacity.
	z := New(c, F32, PoolMinLen)
	if firstOf(z) == bigAt {
		t.Fatalf("a request of %d took a buffer of %d (over PoolMaxWaste)", z.Numel(), (PoolMaxWaste+1)*PoolMinLen)
	}
	if got, want := cap(z.st.(*cpuStorage).f32), poolClass(z.Numel()); got != want {
		t.Fatalf("fresh buffer capacity %d, want its class %d", got, want)
	}
	if got := CPUPoolCounts().Reused - before.Reused; got != 1 {
		t.Fatalf("reused %d, want 1", got)
	}
	// big's buffer sat free through the interval that ends at the second
	// trim: gone after it.
	TrimCPUPool()
	if CPUPoolCounts().Cached == 0 {
		t.Fatal("the first trim dropped a buffer released in the interval it ends")
	}
	TrimCPUPool()
	if n := CPUPoolCounts().Cached; n != 0 {
		t.Fatalf("%d bytes cached after an idle interval, want 0", n)
	}
}

// TestPoolClass: four classes per doubling, each at least the request and
// at most a quarter more, and its own class.
func TestPoolClass(t *testing.T) {
	for n := PoolMinLen; n < 1<<24; n += 1 + n/89 {
		c := poolClass(n)
		if c < n || 4*c > 5*n+4 || poolClass(c) != c {
			t.Fatalf("class(%d) = %d", n, c)
		}
	}
}

// TestReleasedCPUStorageCannotBeUsed: Release detaches the storage's
// memory, so a later use of any view panics instead of reading a buffer
// that someone else now writes; a second Release is an error; the storage
// keeps its length for the tape's accounting.
func TestReleasedCPUStorageCannotBeUsed(t *testing.T) {
	usePool(t)
	c := CPUDefault()
	x := Full(c, F32, 2, 4, PoolMinLen)
	v := x.Narrow(0, 1, 2)
	if err := Release(x); err != nil {
		t.Fatal(err)
	}
	if n := x.Storage().Len(); n != 4*PoolMinLen {
		t.Fatalf("released storage Len %d, want %d", n, 4*PoolMinLen)
	}
	// An engine bug, not bad input: it crashes loudly (an index out of
	// range on the detached memory) instead of reading another tensor's.
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a view of a released storage was read")
			}
		}()
		_ = v.Clone()
	}()
	if err := Release(x); err == nil || !strings.Contains(err.Error(), "released twice") {
		t.Fatalf("second Release: %v, want an error", err)
	}
}

// TestCPUPoolOffRecyclesNothing: without UseCPUPool, Release only
// detaches the memory (the collector frees it) and Alloc never recycles.
func TestCPUPoolOffRecyclesNothing(t *testing.T) {
	before := CPUPoolCounts()
	x := New(CPUDefault(), F32, 2*PoolMinLen)
	if err := Release(x); err != nil {
		t.Fatal(err)
	}
	_ = New(CPUDefault(), F32, 2*PoolMinLen)
	if after := CPUPoolCounts(); after.Recycled != before.Recycled || after.Reused != before.Reused {
		t.Fatalf("pool off: %+v after %+v", after, before)
	}
}
