package dist

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// NCCL needs a GPU and libnccl.so.2; scripts/nccl-check.sh runs these tests
// on a GPU machine. Here (no GPU, no NCCL) they skip saying so, except the
// one that checks the error a worker gets without NCCL.

// gpusForNCCL skips unless NCCL and at least want GPUs are present.
func gpusForNCCL(t *testing.T, want int) *ncclLib {
	t.Helper()
	l, err := loadNCCL()
	if err != nil {
		t.Skip(strings.SplitN(err.Error(), " (", 2)[0] + ": NCCL tests need a GPU machine (scripts/nccl-check.sh)")
	}
	var n int32
	if l.cuDeviceGetCount(&n); int(n) < want {
		t.Skipf("%d CUDA device(s), this test needs %d", n, want)
	}
	return l
}

// TestOpenNCCLSaysWhatIsMissing: without NCCL, opening it fails with the
// library named and what to install (the trainer shows this when CUDA
// workers find no NCCL).
func TestOpenNCCLSaysWhatIsMissing(t *testing.T) {
	if _, err := loadNCCL(); err == nil {
		t.Skip("NCCL is installed here: nothing is missing")
	}
	_, err := OpenNCCL(Single(), 0)
	// Under -tags cudasim NCCL is never opened, and the error says so.
	if err == nil || !strings.Contains(err.Error(), "libnccl.so.2") && !strings.Contains(err.Error(), "libcuda.so.1") && !strings.Contains(err.Error(), "CUDA simulator") {
		t.Fatalf("OpenNCCL without NCCL: %v, want an error naming the missing library", err)
	}
	t.Log(err)
}

// TestNCCLWorldOfOne: NCCL with one rank on GPU 0: the collectives are the
// identity, through the GPU staging buffer.
func TestNCCLWorldOfOne(t *testing.T) {
	gpusForNCCL(t, 1)
	c, err := OpenNCCL(Single(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkNCCL(c, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	t.Log(c.Engine())
}

// TestNCCLAcrossTwoGPUs: two NCCL ranks, one per GPU, in one process
// (one goroutine each; the unique id handed round in memory, where a job
// uses MPI_Bcast): all-reduce and broadcast, and the bandwidth NCCL
// reaches on device buffers and through the host-staged Comm. No MPI is
// needed on the GPU machine.
func TestNCCLAcrossTwoGPUs(t *testing.T) {
	gpusForNCCL(t, 2)
	boots := newMemBoot(2)
	errs := make([]error, 2)
	engines := make([]string, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := OpenNCCL(boots[r], r)
			if err == nil {
				engines[r] = c.Engine()
				err = checkNCCL(c, 2)
				if cerr := c.Close(); err == nil {
					err = cerr
				}
			}
			errs[r] = err
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
	t.Log(engines[0])
}

// memBoot is the bootstrap of NCCL ranks that are goroutines of one
// process: Broadcast through shared memory (all OpenNCCL needs).
type memBoot struct {
	rank, size int
	shared     *memShared
}

type memShared struct {
	mu   sync.Mutex
	id   []byte
	done chan struct{}
}

func newMemBoot(n int) []Comm {
	sh := &memShared{done: make(chan struct{})}
	out := make([]Comm, n)
	for r := range out {
		out[r] = &memBoot{rank: r, size: n, shared: sh}
	}
	return out
}

func (b *memBoot) Rank() int      { return b.rank }
func (b *memBoot) Size() int      { return b.size }
func (b *memBoot) Engine() string { return "memory" }
func (b *memBoot) Close() error   { return nil }
func (b *memBoot) Broadcast(buf []byte, root int) error {
	if b.rank == root {
		b.shared.mu.Lock()
		b.shared.id = append([]byte(nil), buf...)
		b.shared.mu.Unlock()
		close(b.shared.done)
		return nil
	}
	<-b.shared.done
	b.shared.mu.Lock()
	defer b.shared.mu.Unlock()
	copy(buf, b.shared.id)
	return nil
}
func (b *memBoot) AllReduceSumF32([]float32) error { return fmt.Errorf("memBoot: broadcast only") }
func (b *memBoot) AllReduceSumF64([]float64) error { return fmt.Errorf("memBoot: broadcast only") }
func (b *memBoot) IAllReduceSumF32([]float32) (Request, error) {
	return nil, fmt.Errorf("memBoot: broadcast only")
}
func (b *memBoot) Barrier() error { return fmt.Errorf("memBoot: broadcast only") }

// checkNCCL checks the collectives of an NCCL comm of size workers and
// prints the bandwidth (rank 0).
func checkNCCL(c Comm, size int) error {
	r := c.Rank()
	f32 := make([]float32, 1_000_003)
	for i := range f32 {
		f32[i] = float32((r + 1) * (i%7 + 1))
	}
	if err := c.AllReduceSumF32(f32); err != nil {
		return err
	}
	tri := size * (size + 1) / 2
	for i, v := range f32 {
		if want := float32(tri * (i%7 + 1)); v != want {
			return fmt.Errorf("float32 all-reduce: [%d] = %v, want %v", i, v, want)
		}
	}
	f64 := []float64{float64(r) + 0.25}
	if err := c.AllReduceSumF64(f64); err != nil {
		return err
	}
	if want := float64(tri-size) + 0.25*float64(size); f64[0] != want {
		return fmt.Errorf("float64 all-reduce: %v, want %v", f64[0], want)
	}
	b := make([]byte, 1000)
	if r == size-1 {
		for i := range b {
			b[i] = byte(i * 7)
		}
	}
	if err := c.Broadcast(b, size-1); err != nil {
		return err
	}
	for i, v := range b {
		if v != byte(i*7) {
			return fmt.Errorf("broadcast: [%d] = %d", i, v)
		}
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	nc := c.(*ncclComm)
	for _, mb := range []int{16, 256} {
		n := mb << 20 / 4
		host := make([]float32, n)
		start := time.Now()
		if err := c.AllReduceSumF32(host); err != nil {
			return err
		}
		staged := time.Since(start)
		device, err := nc.deviceAllReduceTime(n, 5)
		if err != nil {
			return err
		}
		if r == 0 {
			// Bus bandwidth as NCCL's tests define it: 2(N-1)/N x bytes / time.
			bus := func(d time.Duration) float64 {
				return 2 * float64(size-1) / float64(size) * float64(4*n) / d.Seconds() / 1e9
			}
			fmt.Printf("rank 0: nccl all-reduce of %d MiB float32 over %d rank(s): device buffers %v (%.1f GB/s bus), host-staged %v (%.1f GB/s bus)\n",
				mb, size, device.Round(time.Microsecond), bus(device), staged.Round(time.Microsecond), bus(staged))
		}
	}
	return nil
}

// deviceAllReduceTime is the mean time of iters in-place all-reduces of n
// float32 on the staging buffer: NCCL alone, without the host copies.
func (c *ncclComm) deviceAllReduceTime(n, iters int) (time.Duration, error) {
	if err := c.AllReduceSumF32(make([]float32, n)); err != nil { // sizes the staging buffer
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var took time.Duration
	err := c.onDevice(func() error {
		for i := 0; i <= iters; i++ {
			start := time.Now()
			if err := c.lib.err("ncclAllReduce", c.lib.allReduce(c.scratch, c.scratch, uintptr(n), ncclFloat32, ncclSum, c.comm, 0)); err != nil {
				return err
			}
			if err := c.wait("ncclAllReduce"); err != nil {
				return err
			}
			if i > 0 { // the first warms NCCL's channels up
				took += time.Since(start)
			}
		}
		return nil
	})
	return took / time.Duration(iters), err
}
