package dist

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"
)

// runChild is one MPI worker of the tests in mpi_test.go; it returns the
// process's exit code and prints what the parent checks.
func runChild(mode string) int {
	// Chunks of 65536 elements: the 1e6+3-element buffers below then
	// cross 16 chunk boundaries and end in a partial chunk.
	maxCount = 1 << 16
	c, l, err := FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	var run func(Comm, Launch) error
	switch mode {
	case "collectives":
		run = childCollectives
	case "die":
		run = childDie
	case "hang":
		run = childHang
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err == nil {
		err = run(c, l)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", c.Rank(), err)
		c.Close() // aborts the job after a failed collective
		return 2
	}
	if err := c.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", c.Rank(), err)
		return 2
	}
	if c.Size() > 1 {
		if err := c.Barrier(); err == nil || !strings.Contains(err.Error(), "MPI_Barrier after Close") {
			fmt.Fprintf(os.Stderr, "rank %d: Barrier after Close: %v, want an error\n", c.Rank(), err)
			return 2
		}
	}
	return 0
}

func childCollectives(c Comm, l Launch) error {
	r := c.Rank()
	if c.Size() != 2 || l.Size != 2 || l.Rank != r || l.LocalRank != r {
		return fmt.Errorf("world: comm rank %d size %d, launch %+v; want 2 workers on one machine", r, c.Size(), l)
	}
	for _, n := range []int{0, 1, 1_000_003} {
		f32 := make([]float32, n)
		for i := range f32 {
			f32[i] = float32((r + 1) * (i%7 + 1))
		}
		start := time.Now()
		if err := c.AllReduceSumF32(f32); err != nil {
			return err
		}
		if n > 1 && r == 0 {
			// Bus bandwidth as NCCL's tests define it: 2(N-1)/N x bytes / time.
			d := time.Since(start)
			fmt.Printf("rank 0: float32 all-reduce of %d elements (%d-element chunks): %v, %.2f GB/s bus bandwidth\n",
				n, maxCount, d.Round(time.Microsecond), float64(4*n)/d.Seconds()/1e9)
		}
		for i, v := range f32 {
			if want := float32(3 * (i%7 + 1)); v != want {
				return fmt.Errorf("float32 all-reduce of %d: [%d] = %v, want %v", n, i, v, want)
			}
		}
		value := func(rank, i int) float64 { return float64(rank+1)/3 + float64(i)*1e-3 }
		f64 := make([]float64, n)
		for i := range f64 {
			f64[i] = value(r, i)
		}
		if err := c.AllReduceSumF64(f64); err != nil {
			return err
		}
		for i, v := range f64 {
			if want := value(0, i) + value(1, i); v != want {
				return fmt.Errorf("float64 all-reduce of %d: [%d] = %v, want %v", n, i, v, want)
			}
		}
	}
	for _, n := range []int{0, 1_000_003} {
		buf := make([]byte, n)
		if r == 1 {
			for i := range buf {
				buf[i] = byte(i*31 + 7)
			}
		}
		if err := c.Broadcast(buf, 1); err != nil {
			return err
		}
		for i, v := range buf {
			if v != byte(i*31+7) {
				return fmt.Errorf("broadcast of %d bytes from rank 1: [%d] = %d", n, i, v)
			}
		}
	}
	if err := c.Broadcast(nil, 2); err == nil {
		return fmt.Errorf("broadcast from root 2 of 2 workers was accepted")
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	// Every worker names the same engine: rank 0's name, broadcast.
	name := make([]byte, 128)
	copy(name, c.Engine())
	if err := c.Broadcast(name, 0); err != nil {
		return err
	}
	if root := string(bytes.TrimRight(name, "\x00")); root != c.Engine() || len(c.Engine()) < 5 || c.Engine()[:4] != "mpi:" {
		return fmt.Errorf("engine %q, rank 0's %q: want the same mpi:<library> everywhere", c.Engine(), root)
	}
	// Strings of different lengths, the empty one included.
	mine := []string{"host-a:cuda:0", ""}[r]
	all, err := AllGatherStrings(c, mine)
	if err != nil {
		return err
	}
	if len(all) != 2 || all[0] != "host-a:cuda:0" || all[1] != "" {
		return fmt.Errorf("AllGatherStrings = %q, want [host-a:cuda:0 \"\"]", all)
	}
	if err := childNonblocking(c); err != nil {
		return err
	}
	if err := childErrorsReturn(c.(*mpiComm)); err != nil {
		return err
	}
	fmt.Printf("rank %d of 2: collectives ok (engine %s, local rank %d)\n", r, c.Engine(), l.LocalRank)
	return nil
}

// childNonblocking: two MPI_Iallreduce (one of 16 chunks and a partial
// one), a blocking all-reduce started between them, the requests waited
// in the other order after the MPI thread has had time to progress them.
func childNonblocking(c Comm) error {
	r := c.Rank()
	big, small := make([]float32, 1_000_003), []float32{float32(r + 1)}
	for i := range big {
		big[i] = float32((r + 1) * (i%5 + 1))
	}
	rb, err := c.IAllReduceSumF32(big)
	if err != nil {
		return err
	}
	f64 := []float64{float64(r)}
	if err := c.AllReduceSumF64(f64); err != nil {
		return err
	}
	rs, err := c.IAllReduceSumF32(small)
	if err != nil {
		return err
	}
	time.Sleep(20 * time.Millisecond)
	if err := rs.Wait(); err != nil {
		return err
	}
	if err := rb.Wait(); err != nil {
		return err
	}
	if err := rb.Wait(); err != nil { // a second Wait returns at once
		return err
	}
	for i, v := range big {
		if want := float32(3 * (i%5 + 1)); v != want {
			return fmt.Errorf("nonblocking float32 all-reduce: [%d] = %v, want %v", i, v, want)
		}
	}
	if small[0] != 3 || f64[0] != 1 {
		return fmt.Errorf("nonblocking all-reduce of 1 element: %v, blocking one between: %v; want 3 and 1", small[0], f64[0])
	}
	if mc := c.(*mpiComm); len(mc.pending) != 0 {
		return fmt.Errorf("%d requests still pending after Wait", len(mc.pending))
	}
	return nil
}

// childErrorsReturn makes an MPI call with a count of -1: with
// MPI_ERRORS_RETURN set on the communicator the library reports it (each
// worker checks its own arguments, so nothing waits on the other), where
// the default handler would abort the job. Open MPI only: Debian's MPICH
// checks no arguments (measured: the same call crashes in its datatype
// code), so a bad call there cannot be reported, only avoided.
func childErrorsReturn(c *mpiComm) error {
	if c.lib.h.family != "openmpi" {
		return nil
	}
	var x float32
	done := make(chan error, 1)
	c.calls <- func() {
		h := c.lib.h
		rc := c.lib.allreduce(h.inPlace, unsafe.Pointer(&x), -1, h.float32T, h.opSum, h.commWorld)
		if rc == 0 {
			done <- nil
			return
		}
		done <- c.mpiError("MPI_Allreduce", rc)
	}
	err := <-done
	if want := fmt.Sprintf("mpi rank %d: MPI_Allreduce: ", c.Rank()); err == nil || !strings.Contains(err.Error(), want) ||
		!strings.Contains(strings.ToLower(err.Error()), "count") {
		return fmt.Errorf("MPI_Allreduce of -1 elements: error %v, want one starting %q and naming the count", err, want)
	}
	fmt.Printf("rank %d: bad call reported: %v\n", c.Rank(), err)
	return nil
}

// childDie: rank 1 kills itself (SIGKILL, as the OOM killer would) while
// rank 0 is all-reducing.
func childDie(c Comm, _ Launch) error {
	buf := make([]float32, 100_000)
	for step := 0; ; step++ {
		if c.Rank() == 1 && step == 3 {
			self, _ := os.FindProcess(os.Getpid())
			self.Kill()
		}
		if err := c.AllReduceSumF32(buf); err != nil {
			return err
		}
	}
}

// childHang: rank 1 stops calling collectives; rank 0's all-reduce times
// out (FTUNE_DIST_TIMEOUT) and aborts the job.
func childHang(c Comm, _ Launch) error {
	// The barrier gets a minute: on a loaded machine the workers may start
	// seconds apart, and only the hang below is meant to time out.
	mc := c.(*mpiComm)
	if mc.timeout != 2*time.Second {
		return fmt.Errorf("timeout %v, want the 2s of %s", mc.timeout, timeoutEnv)
	}
	mc.timeout = time.Minute
	if err := c.Barrier(); err != nil {
		return err
	}
	mc.timeout = 2 * time.Second
	if c.Rank() == 1 {
		time.Sleep(10 * time.Minute)
		return fmt.Errorf("rank 1 was not ended by rank 0's abort")
	}
	return c.AllReduceSumF32(make([]float32, 16))
}
