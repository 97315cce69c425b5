package cuda

import (
	"errors"
	"strings"
	"testing"
)

// fakeMemory is a MemorySource without a GPU: addresses from a counter,
// the driver's out-of-memory past capacity bytes (0: unlimited).
type fakeMemory struct {
	next     Ptr
	held     map[Ptr]int
	bytes    int
	capacity int
	allocs   int
}

func newFakeMemory(capacity int) *fakeMemory {
	return &fakeMemory{next: 0x10000, held: map[Ptr]int{}, capacity: capacity}
}

func (f *fakeMemory) MemAlloc(n int) (Ptr, error) {
	if f.capacity > 0 && f.bytes+n > f.capacity {
		return 0, &Error{Call: "cuMemAlloc", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY"}
	}
	p := f.next
	f.next += Ptr(n+255) &^ 255
	f.held[p] = n
	f.bytes += n
	f.allocs++
	return p, nil
}

func (f *fakeMemory) MemFree(p Ptr) error {
	n, ok := f.held[p]
	if !ok {
		return errors.New("fake: free of a block not held")
	}
	delete(f.held, p)
	f.bytes -= n
	return nil
}

func TestAllocatorLimitRefusesPastTheCap(t *testing.T) {
	mem := newFakeMemory(0)
	a := NewAllocator(mem)
	if err := a.SetLimit(10 << 20); err != nil {
		t.Fatal(err)
	}
	p1, err := a.Alloc(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Alloc(4 << 20); err != nil {
		t.Fatal(err)
	}
	_, err = a.Alloc(4 << 20)
	var oom *OutOfMemoryError
	if !errors.As(err, &oom) || !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("third 4 MiB block under a 10 MiB cap: got %v, want an OutOfMemoryError", err)
	}
	for _, want := range []string{"4.0 MiB requested", "8.0 MiB live", "8.0 MiB reserved", "cap of 10.0 MiB", "--max-device-memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if st := a.Stats(); st.Reserved != 8<<20 || st.Live != 8<<20 || st.Limit != 10<<20 || mem.bytes != 8<<20 {
		t.Errorf("after the refusal: stats %+v, driver holds %d; want 8 MiB live and reserved, 10 MiB limit", st, mem.bytes)
	}
	// A freed block of the same class is reused under the cap.
	if err := a.Free(p1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Alloc(4 << 20); err != nil {
		t.Fatalf("reuse of a cached block under the cap: %v", err)
	}
	if mem.allocs != 2 {
		t.Errorf("driver allocations %d, want 2 (the third block came from the cache)", mem.allocs)
	}
}

func TestAllocatorLimitTrimsCachedBlocksFirst(t *testing.T) {
	mem := newFakeMemory(0)
	a := NewAllocator(mem)
	if err := a.SetLimit(8 << 20); err != nil {
		t.Fatal(err)
	}
	small, err := a.Alloc(6 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Free(small); err != nil { // cached: reserved stays 6 MiB
		t.Fatal(err)
	}
	// 4 MiB of another class fits only once the cached 6 MiB block is
	// given back to the driver.
	if _, err := a.Alloc(4 << 20); err != nil {
		t.Fatalf("allocation that fits after trimming the cache: %v", err)
	}
	if st := a.Stats(); st.Reserved != 4<<20 || mem.bytes != 4<<20 {
		t.Errorf("reserved %d, driver holds %d; want 4 MiB (the cached block trimmed)", st.Reserved, mem.bytes)
	}
	// Lowering the cap trims what is cached and refuses what does not fit.
	if err := a.SetLimit(2 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Alloc(1024); !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("1 KiB with 4 MiB live under a 2 MiB cap: got %v, want out of memory", err)
	}
	if err := a.SetLimit(-1); err == nil {
		t.Error("SetLimit(-1) accepted")
	}
}

// The driver's CUDA_ERROR_OUT_OF_MEMORY reaches the caller as the same
// clear error, after the cache was given back and the request retried.
func TestAllocatorDriverOutOfMemoryIsClear(t *testing.T) {
	mem := newFakeMemory(5 << 20)
	a := NewAllocator(mem)
	p, err := a.Alloc(3 << 20)
	if err != nil {
		t.Fatal(err)
	}
	q, err := a.Alloc(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Free(q); err != nil {
		t.Fatal(err)
	}
	// 2 MiB fits only after the cached 1 MiB block goes back.
	if _, err := a.Alloc(2 << 20); err != nil {
		t.Fatalf("2 MiB after trimming: %v", err)
	}
	_, err = a.Alloc(4 << 20)
	var oom *OutOfMemoryError
	if !errors.As(err, &oom) || !errors.Is(err, ErrOutOfMemory) || oom.Driver == nil || oom.Limit != 0 {
		t.Fatalf("driver refusal: got %#v (%v), want an OutOfMemoryError wrapping the driver's", err, err)
	}
	for _, want := range []string{"4.0 MiB requested", "5.0 MiB live", "CUDA_ERROR_OUT_OF_MEMORY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := a.Free(p); err != nil {
		t.Fatal(err)
	}
}
