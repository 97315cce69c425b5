package cudabackend

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/tensor"
)

// A value offloaded to pinned host memory comes back bit for bit after its
// device storage was released and the block written over by later work
// (the copies run on a copy stream, ordered by events: ptxsim runs that
// stream only when waited for, so a missing wait shows); the pinned buffer is reused for
// the next offload of the same size (no new pinning per step); views of
// part of a storage are not offloaded, NF4 weights are refused, and a copy
// restores once.
func TestOffloadToHostRoundTrip(t *testing.T) {
	b := open(t, Options{})
	b.collect()
	rng := rand.New(rand.NewPCG(5, 11))
	for _, tc := range []struct {
		dt tensor.DType
		n  int
	}{{tensor.F32, 1}, {tensor.F32, 100003}, {tensor.BF16, 7}, {tensor.BF16, 65537}} {
		want := make([]float32, tc.n)
		for i := range want {
			want[i] = float32(rng.NormFloat64())
		}
		x := tensor.FromHost(b, tensor.F32, want, tc.n).To(tc.dt)
		want = x.F32() // bf16-rounded for BF16
		before := b.PinnedBytes()
		off, err := tensor.Offload(x)
		if err != nil || off == nil {
			t.Fatalf("%v x %d: offload %v, %v", tc.dt, tc.n, off, err)
		}
		if err := tensor.Release(x); err != nil {
			t.Fatal(err)
		}
		// Later work allocates while the copy (on the copy stream, which
		// ptxsim runs only when waited for) may still read x's block: it
		// must not get that block.
		junk := tensor.Full(b, tc.dt, -3, tc.n)
		// Once the copy has run, x's block is free again: poison it, so
		// that a restore read before its copy back shows.
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		poison := tensor.Full(b, tc.dt, -5, tc.n)
		if err := tensor.Release(poison); err != nil {
			t.Fatal(err)
		}
		y, err := off.Restore()
		if err != nil {
			t.Fatal(err)
		}
		// Read on the device first (a copy on the compute stream, as a
		// kernel would): a download alone synchronizes the device, which
		// would run a restore that forgot its wait in time.
		if got := y.Clone().F32(); !slices.Equal(got, want) {
			t.Errorf("%v x %d: restored value differs", tc.dt, tc.n)
		}
		if junk.F32()[0] != -3 {
			t.Error("the restore wrote into another tensor")
		}
		grew := b.PinnedBytes() - before
		if grew > int64(tc.n*tc.dt.Size()) {
			t.Errorf("%v x %d: %d bytes pinned for %d", tc.dt, tc.n, grew, tc.n*tc.dt.Size())
		}
		// The same size again reuses the pooled buffer.
		again, err := tensor.Offload(y)
		if err != nil {
			t.Fatal(err)
		}
		if b.PinnedBytes() != before+grew {
			t.Errorf("%v x %d: a second offload pinned %d more bytes", tc.dt, tc.n, b.PinnedBytes()-before-grew)
		}
		if _, err := again.Restore(); err != nil {
			t.Fatal(err)
		}
		if _, err := again.Restore(); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("second restore: %v", err)
		}
	}
	whole := tensor.Full(b, tensor.F32, 1, 4, 8)
	if off, err := tensor.Offload(whole.Narrow(0, 1, 2)); off != nil || err != nil {
		t.Errorf("a view of part of a storage: offloaded %v, %v", off, err)
	}
	q := tensor.FromHost(b, tensor.NF4, tensor.NF4Data{Packed: make([]byte, 32), Absmax: []float32{1}, BlockSize: 64, Len: 64}, 64)
	if _, err := tensor.Offload(q); !errors.Is(err, tensor.ErrUnsupported) {
		t.Errorf("NF4: %v, want ErrUnsupported", err)
	}
}

// A prefetched copy back (autograd prefetches the value the backward reads
// next) owns its block from Prefetch on: later allocations do not get it,
// Restore waits for the copy, a second Prefetch does nothing, and a
// prefetched copy dropped without its Restore gives its block back when
// the collector finds it.
func TestOffloadPrefetch(t *testing.T) {
	b := open(t, Options{})
	b.collect()
	const n = 4099
	want := make([]float32, n)
	for i := range want {
		want[i] = float32(i) - 7.5
	}
	x := tensor.FromHost(b, tensor.F32, want, n)
	off, err := tensor.Offload(x)
	if err != nil || off == nil {
		t.Fatalf("offload: %v, %v", off, err)
	}
	if err := tensor.Release(x); err != nil {
		t.Fatal(err)
	}
	// x's block, free once its copy has run, poisoned (see above).
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := tensor.Release(tensor.Full(b, tensor.F32, -5, n)); err != nil {
		t.Fatal(err)
	}
	if err := off.Prefetch(); err != nil {
		t.Fatal(err)
	}
	if err := off.Prefetch(); err != nil {
		t.Fatalf("second prefetch: %v", err)
	}
	junk := tensor.Full(b, tensor.F32, -3, n)
	y, err := off.Restore()
	if err != nil {
		t.Fatal(err)
	}
	if got := y.Clone().F32(); !slices.Equal(got, want) { // read on the device first (see above)
		t.Error("prefetched value differs")
	}
	if junk.F32()[n-1] != -3 {
		t.Error("the copy back wrote into another tensor")
	}
	if _, err := off.Restore(); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second restore: %v", err)
	}

	dropped, err := tensor.Offload(y)
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.Release(y); err != nil {
		t.Fatal(err)
	}
	if err := b.settle(true); err != nil { // y's block back to the allocator
		t.Fatal(err)
	}
	before := b.Stats().Live
	if err := dropped.Prefetch(); err != nil {
		t.Fatal(err)
	}
	if b.Stats().Live <= before {
		t.Fatalf("prefetch allocated nothing: live %d -> %d", before, b.Stats().Live)
	}
	dropped = nil
	for i := 0; i < 50 && b.Stats().Live > before; i++ {
		runtime.GC()
		time.Sleep(2 * time.Millisecond)
	}
	if b.Stats().Live > before {
		t.Errorf("a dropped prefetch kept its block: live %d, %d before it", b.Stats().Live, before)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
}
