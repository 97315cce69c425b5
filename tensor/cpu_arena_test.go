package tensor

import (
	"math"
	"testing"
)

func TestArenaClass(t *testing.T) {
	prev := 0
	for n := 1; n < 1<<20; n += 1 + n/97 {
		c := arenaClass(n)
		if c < n || float64(c) > float64(n)*1.125+1 {
			t.Fatalf("class(%d) = %d: want n ≤ class ≤ 1.125·n", n, c)
		}
		if c < prev {
			t.Fatalf("class(%d) = %d below the previous class %d", n, c, prev)
		}
		if arenaClass(c) != c {
			t.Fatalf("class(%d) = %d is not its own class (%d)", n, c, arenaClass(c))
		}
		prev = c
	}
}

// newTestCPU is a backend of its own, so setting an arena on it does not
// touch the shared default.
func newTestCPU() *CPUBackend { return &CPUBackend{threads: 1} }

func TestArenaRecyclesAfterReset(t *testing.T) {
	c := newTestCPU()
	a := NewArena()
	a.poison = true
	c.SetArena(a)
	defer c.SetArena(nil)

	x := New(c, F32, 4, ArenaMinLen/2) // served by the arena
	small := New(c, F32, 8)            // below ArenaMinLen: heap
	d := New(c, F64, ArenaMinLen)      // not float32: heap
	if !x.st.(*cpuStorage).arena || small.st.(*cpuStorage).arena || d.st.(*cpuStorage).arena {
		t.Fatal("arena flags: want only the large float32 tensor in the arena")
	}
	xs := F32Data(x)
	for i := range xs {
		xs[i] = 1
	}
	if r, f := a.Stats(); r != 0 || f != 1 {
		t.Fatalf("stats before Reset: reused %d fresh %d, want 0 1", r, f)
	}
	a.Reset()
	// Poisoned: a tensor used after Reset reads NaN, not stale values.
	if v := xs[17]; !math.IsNaN(float64(v)) {
		t.Fatalf("after Reset a recycled element is %v, want NaN (poison)", v)
	}
	// 2·ArenaMinLen−100 rounds up to the same capacity class as x.
	y := New(c, F32, 2*ArenaMinLen-100)
	if r, f := a.Stats(); r != 1 || f != 1 {
		t.Fatalf("after Reset: reused %d fresh %d, want 1 1", r, f)
	}
	if ys := F32Data(y); &ys[0] != &xs[0] || len(ys) != 2*ArenaMinLen-100 {
		t.Fatalf("recycled tensor: %d elements, same buffer %v; want %d, true", len(ys), &ys[0] == &xs[0], 2*ArenaMinLen-100)
	}
	// A buffer left unused through a whole step is dropped at the next
	// Reset, so the arena does not keep old sizes forever.
	a.Reset()
	a.Reset()
	_ = New(c, F32, 2*ArenaMinLen)
	if r, f := a.Stats(); r != 1 || f != 2 {
		t.Fatalf("after an idle step: reused %d fresh %d, want 1 2 (the idle buffer dropped)", r, f)
	}
}

func TestPersist(t *testing.T) {
	c := newTestCPU()
	a := NewArena()
	heap := New(c, F32, ArenaMinLen)
	if Persist(heap, false) != heap {
		t.Fatal("Persist of a heap tensor copied it")
	}
	if p := Persist(heap, true); p == heap || p.st.(*cpuStorage).arena {
		t.Fatal("Persist(copy) of a heap tensor did not make a heap copy")
	}
	c.SetArena(a)
	defer c.SetArena(nil)
	x := New(c, F32, 2, ArenaMinLen/2)
	xs := F32Data(x)
	for i := range xs {
		xs[i] = float32(i)
	}
	p := Persist(x, false)
	if p == x || p.st.(*cpuStorage).arena {
		t.Fatal("Persist of an arena tensor stayed in the arena")
	}
	if !p.Shape().Equal(x.Shape()) {
		t.Fatalf("Persist shape %v, want %v", p.Shape(), x.Shape())
	}
	a.Reset()
	xs[5] = -1 // the arena may hand x's buffer out again
	if got := F32Data(p)[5]; got != 5 {
		t.Fatalf("persisted value %v changed with the recycled buffer, want 5", got)
	}
}

// TestArenaClaimIsExclusive: a second claim on a backend fails while the
// first holds it (two training loops would Reset each other's tensors),
// a release by a non-holder changes nothing, and the holder's release
// frees the claim and routes allocations back to the heap.
func TestArenaClaimIsExclusive(t *testing.T) {
	c := newTestCPU()
	a, b := NewArena(), NewArena()
	if err := c.ClaimArena(a); err != nil {
		t.Fatal(err)
	}
	if err := c.ClaimArena(b); err == nil {
		t.Fatal("a second arena claimed a held backend")
	}
	c.ReleaseArena(b) // not the holder: no effect
	if err := c.ClaimArena(b); err == nil {
		t.Fatal("a release by a non-holder freed the claim")
	}
	c.SetArena(a)
	c.ReleaseArena(a)
	if x := New(c, F32, ArenaMinLen); x.st.(*cpuStorage).arena {
		t.Fatal("after its release the arena still serves allocations")
	}
	if err := c.ClaimArena(b); err != nil {
		t.Fatalf("after the holder's release: %v", err)
	}
}
