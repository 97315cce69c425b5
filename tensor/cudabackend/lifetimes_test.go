package cudabackend

import (
	"errors"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/ftune/ftune/kernels/cuda"
	"github.com/ftune/ftune/tensor"
)

// Release gives a block back at once (live bytes drop without a
// collection), and a tensor whose storage was released is refused with an
// error, never read.
func TestReleaseReturnsMemoryNowAndRefusesUse(t *testing.T) {
	b := open(t, Options{})
	b.collect() // earlier tests' garbage freed now, not during the count
	x := tensor.Full(b, tensor.F32, 1.5, 1024, 1024)
	view := x.Narrow(0, 10, 5)
	live := b.Stats().Live
	if err := tensor.Release(x); err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().Live; got != live-4<<20 {
		t.Errorf("live bytes %d after releasing 4 MiB, want %d", got, live-4<<20)
	}
	err := tensor.Catch(func() { view.F32() })
	if err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("reading a view of a released storage: got %v, want an error saying it was released", err)
	}
	if err := tensor.Release(x); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second release: got %v", err)
	}
}

// Past Options.MaxDeviceMemory an allocation is refused with an error
// naming the cap and the tensor's shape; nothing crashes.
func TestMaxDeviceMemoryRefusesWithTheShape(t *testing.T) {
	b := open(t, Options{})
	// Dead storages of earlier tests freed and cached blocks trimmed first,
	// so that nothing can make room for the request below.
	b.collect()
	reserved := b.Stats().Reserved
	capped, err := Open(Options{MaxDeviceMemory: reserved + 64<<20})
	if err != nil {
		t.Fatal(err)
	}
	// The allocator is the device's, shared by every backend on it.
	t.Cleanup(func() { _ = b.alloc.SetLimit(0) })
	small := tensor.New(capped, tensor.F32, 1024, 1024) // 4 MiB fits
	err = tensor.Catch(func() { tensor.New(capped, tensor.F32, 8192, 4096) })
	var oom *cuda.OutOfMemoryError
	if !errors.As(err, &oom) || !errors.Is(err, cuda.ErrOutOfMemory) {
		t.Fatalf("128 MiB under a cap 64 MiB above what was reserved: got %v", err)
	}
	// The shape as tensor.Shape prints it ("[8192,4096]"), not a Go slice.
	for _, want := range []string{tensor.Shape{8192, 4096}.String(), "128.0 MiB requested", "--max-device-memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	_ = small
	if _, err := Open(Options{MaxDeviceMemory: -1}); err == nil {
		t.Error("a negative cap was accepted")
	}
}

// Alloc forces a garbage collection only where one can pay: when the
// caching allocator has no block of the size asked for (the reserve would
// grow) and enough bytes were left to the collector since the last one.
// Storages released explicitly do not count; live storages served from the
// cache (a block's activations at a long sequence, every step) force none;
// storages dropped without a release are still collected, and the reserve
// stays bounded.
func TestForcedCollectionsOnlyWhereTheyCanPay(t *testing.T) {
	b := open(t, Options{})
	// Earlier tests' garbage freed and the cache given back; then only
	// the forced collections run.
	b.collect()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const gcEvery = 4 << 20
	const piece = 300001 // float32s: a size class (1.25 MiB) of this test's own
	b.gcEvery = gcEvery
	b.sinceGC.Store(0)
	forced := func() int64 { return b.forcedGCs.Load() }

	before := forced()
	for range 64 { // 80 MiB, each released
		if err := tensor.Release(tensor.New(b, tensor.F32, piece)); err != nil {
			t.Fatal(err)
		}
	}
	if n := forced() - before; n != 0 {
		t.Errorf("%d collections forced for 80 MiB allocated and released piece by piece (gcEvery 4 MiB)", n)
	}

	// 20 MiB alive at once, released, then alive again: the second time
	// the cache serves every piece.
	hold := func() []*tensor.Tensor {
		var l []*tensor.Tensor
		for range 16 {
			l = append(l, tensor.New(b, tensor.F32, piece))
		}
		return l
	}
	for _, x := range hold() {
		if err := tensor.Release(x); err != nil {
			t.Fatal(err)
		}
	}
	before = forced()
	kept := hold()
	if n := forced() - before; n != 0 {
		t.Errorf("%d collections forced for 20 MiB of live tensors the cache served (gcEvery 4 MiB): nothing was dead", n)
	}
	for _, x := range kept {
		if err := tensor.Release(x); err != nil {
			t.Fatal(err)
		}
	}

	// Left to the collector: 64 pieces dropped unreleased.
	b.collect()
	reserved, before := b.Stats().Reserved, forced()
	for range 64 {
		_ = tensor.New(b, tensor.F32, piece)
	}
	grew := b.Stats().Reserved - reserved
	if n := forced() - before; n < 2 {
		t.Errorf("%d collections forced for 80 MiB left to the collector, want 2 or more (gcEvery 4 MiB)", n)
	}
	if grew > 40<<20 {
		t.Errorf("the reserve grew by %d MiB for 80 MiB left to the collector 1.25 MiB at a time, want at most 40", grew>>20)
	}
	t.Logf("80 MiB left to the collector: %d collections forced, reserve grew by %.2f MiB", forced()-before, float64(grew)/(1<<20))
}

// A product that would split K but finds no room for its scratch under the
// device-memory cap runs unsplit, and the log says so once.
func TestUnsplitProductIsLoggedOnce(t *testing.T) {
	var log strings.Builder
	b := open(t, Options{BF16MatMul: true, Log: &log})
	const M, N, K = 16, 200, 2100 // LoRA's dA shape: few output tiles, long K
	a := tensor.Full(b, tensor.BF16, 0.5, K, M)
	w := tensor.Full(b, tensor.BF16, 0.25, K, N)
	dst := tensor.New(b, tensor.F32, M, N)
	al := b.CUDADevice().Allocator()
	// Storages other tests left to the collector are freed into the cache
	// by their cleanups; collect them first (and give the cache back), or
	// one could free a block of the scratch's size under the cap.
	b.collect()
	b.collect()
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // and none while the cap is set
	if err := al.SetLimit(al.Stats().Reserved); err != nil {
		t.Fatal(err)
	}
	before := b.CUDADevice().UnsplitProducts()
	for range 2 {
		if err := b.MatMul(dst, a, w, true, false, 1, 0); err != nil {
			_ = al.SetLimit(0)
			t.Fatal(err)
		}
	}
	if err := al.SetLimit(0); err != nil {
		t.Fatal(err)
	}
	if n := b.CUDADevice().UnsplitProducts() - before; n != 2 {
		t.Errorf("%d products ran unsplit, want 2", n)
	}
	if got := dst.F32()[0]; got != 0.125*K {
		t.Errorf("C[0] = %v, want %v", got, 0.125*K)
	}
	if n := strings.Count(log.String(), "ran with K unsplit"); n != 1 {
		t.Errorf("the log says it %d times, want once:\n%s", n, log.String())
	}
}
