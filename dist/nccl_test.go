package dist

import (
	"fmt"
	"strings"
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
	if err == nil || !strings.Contains(err.Error(), "libnccl.so.2") && !strings.Contains(err.Error(), "libcuda.so.1") {
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

// TestNCCLAcrossTwoGPUs: two workers under Open MPI's mpirun, one per GPU,
// all-reduce and broadcast through NCCL, and report the bandwidth NCCL
// reaches on device buffers and through the host-staged Comm.
func TestNCCLAcrossTwoGPUs(t *testing.T) {
	gpusForNCCL(t, 2)
	l := openMPIForTest(t)
	out, elapsed, err := runWorkers(t, l, "nccl", 2, 3*time.Minute)
	if err != nil {
		t.Fatalf("%s -np 2 with NCCL: %v\n%s", l.name, err, out)
	}
	for r := 0; r < 2; r++ {
		if want := fmt.Sprintf("rank %d of 2: nccl ok", r); !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("2 workers, %v:\n%s", elapsed.Round(time.Millisecond), out)
}

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
