package dist

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// maxCount is the most elements one MPI call carries: MPI counts are C
// ints, so a longer buffer goes in chunks. A variable so the tests can
// exercise the chunking on small buffers.
var maxCount = math.MaxInt32

// DefaultTimeout bounds how long one collective may wait for the other
// workers before the job is declared hung (see FromEnv's FTUNE_DIST_TIMEOUT).
const DefaultTimeout = 30 * time.Minute

// Thread levels (the same values in every MPI).
const mpiThreadFunneled = 1

// mpiComm is a Comm over MPI_COMM_WORLD. Every MPI call runs on one
// goroutine locked to one OS thread, the thread that called
// MPI_Init_thread: Go moves goroutines between threads, and
// MPI_THREAD_FUNNELED (all an MPI has to provide) allows calls from that
// thread only.
type mpiComm struct {
	lib        *mpiLib
	rank, size int
	engine     string
	timeout    time.Duration

	calls   chan func()
	mu      sync.Mutex    // serialises callers: one collective at a time
	fail    error         // the first failed or timed-out collective; the comm is unusable after it
	pending []*mpiRequest // started, not complete (MPI thread only; mpi_nonblocking.go)
}

// openMPI initialises MPI on a dedicated thread and returns the comm over
// MPI_COMM_WORLD. timeout bounds each collective.
func openMPI(lib *mpiLib, timeout time.Duration) (*mpiComm, error) {
	c := &mpiComm{lib: lib, timeout: timeout, calls: make(chan func())}
	started := make(chan error, 1)
	go c.serve(started)
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// serve owns the MPI thread: it initialises MPI, then runs every call sent
// on c.calls until the channel closes.
func (c *mpiComm) serve(started chan<- error) {
	runtime.LockOSThread() // never unlocked: MPI stays bound to this thread
	started <- c.init()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		var progress <-chan time.Time
		if len(c.pending) > 0 {
			progress = tick.C
		}
		select {
		case call, ok := <-c.calls:
			if !ok {
				return
			}
			call()
		case <-progress:
			c.progress()
		}
	}
}

func (c *mpiComm) init() error {
	l := c.lib
	var flag int32
	l.initialized(&flag)
	if flag != 0 {
		return fmt.Errorf("mpi: MPI is already initialised in this process (one comm per process)")
	}
	var provided int32
	if rc := l.initThread(nil, nil, mpiThreadFunneled, &provided); rc != 0 {
		return fmt.Errorf("mpi: MPI_Init_thread with %s failed (error %d)", l.name, rc)
	}
	if provided < mpiThreadFunneled {
		l.finalize()
		return fmt.Errorf("mpi: %s provides thread level %d, ftune needs MPI_THREAD_FUNNELED (1)", l.name, provided)
	}
	// Errors come back as codes instead of aborting the job inside MPI, so
	// they reach the trainer with the call and the rank named.
	if rc := l.commSetErrh(l.h.commWorld, l.h.errorsRet); rc != 0 {
		return c.mpiError("MPI_Comm_set_errhandler", rc)
	}
	var rank, size int32
	if rc := l.commRank(l.h.commWorld, &rank); rc != 0 {
		return c.mpiError("MPI_Comm_rank", rc)
	}
	if rc := l.commSize(l.h.commWorld, &size); rc != 0 {
		return c.mpiError("MPI_Comm_size", rc)
	}
	c.rank, c.size = int(rank), int(size)
	c.engine = "mpi:" + shortVersion(c.libraryVersion())
	return nil
}

func (c *mpiComm) libraryVersion() string {
	buf := make([]byte, c.lib.h.maxVersion)
	n := int32(len(buf))
	if rc := c.lib.libraryVersion(&buf[0], &n); rc != 0 || n <= 0 || int(n) > len(buf) {
		return c.lib.h.family + " (version unknown)"
	}
	return string(buf[:n])
}

// shortVersion keeps the name and version of an MPI library's version
// string: "Open MPI v4.1.4, package: Debian OpenMPI, ..." becomes
// "Open MPI v4.1.4"; MPICH's "MPICH Version:\t4.0.2\nMPICH Release ..."
// becomes "MPICH Version: 4.0.2".
func shortVersion(v string) string {
	v = strings.TrimRight(v, "\x00")
	if i := strings.IndexAny(v, "\n,"); i >= 0 {
		v = v[:i]
	}
	return strings.Join(strings.Fields(v), " ")
}

// mpiError turns an MPI error code into an error naming the call and rank.
func (c *mpiComm) mpiError(call string, rc int32) error {
	buf := make([]byte, c.lib.h.maxErrorStr)
	n := int32(len(buf))
	msg := fmt.Sprintf("error %d", rc)
	if c.lib.errorString(rc, &buf[0], &n) == 0 && n > 0 && int(n) <= len(buf) {
		msg = fmt.Sprintf("%s (error %d)", strings.TrimRight(string(buf[:n]), "\x00"), rc)
	}
	return fmt.Errorf("mpi rank %d: %s: %s", c.rank, call, msg)
}

// do runs fn on the MPI thread and waits at most c.timeout for it. A
// failure or a timeout poisons the comm: the other workers are then at a
// different point of the program, and any later collective would pair
// with the wrong call.
func (c *mpiComm) do(call string, fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return fmt.Errorf("mpi rank %d: %s after an earlier failure: %w", c.rank, call, c.fail)
	}
	if c.calls == nil {
		return fmt.Errorf("mpi rank %d: %s after Close", c.rank, call)
	}
	done := make(chan error, 1)
	c.calls <- func() { done <- fn() }
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		c.fail = err
		return err
	case <-timer.C:
		c.fail = fmt.Errorf("mpi rank %d: %s did not complete within %v: another worker is hung or dead (the job is aborted)", c.rank, call, c.timeout)
		return c.fail
	}
}

func (c *mpiComm) Rank() int      { return c.rank }
func (c *mpiComm) Size() int      { return c.size }
func (c *mpiComm) Engine() string { return c.engine }

func (c *mpiComm) AllReduceSumF32(buf []float32) error {
	return c.allReduce("MPI_Allreduce(MPI_FLOAT)", unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 4, c.lib.h.float32T)
}

func (c *mpiComm) AllReduceSumF64(buf []float64) error {
	return c.allReduce("MPI_Allreduce(MPI_DOUBLE)", unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 8, c.lib.h.float64T)
}

// allReduce sums n elements of elemSize bytes at p in place, in chunks of
// at most maxCount elements.
func (c *mpiComm) allReduce(call string, p unsafe.Pointer, n, elemSize int, dtype uintptr) error {
	h := c.lib.h
	return c.do(call, func() error {
		for off := 0; off < n; off += maxCount {
			count := min(n-off, maxCount)
			chunk := unsafe.Add(p, off*elemSize)
			if rc := c.lib.allreduce(h.inPlace, chunk, int32(count), dtype, h.opSum, h.commWorld); rc != 0 {
				return c.mpiError(fmt.Sprintf("%s of %d elements at offset %d", call, count, off), rc)
			}
		}
		return nil
	})
}

func (c *mpiComm) Broadcast(buf []byte, root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("mpi rank %d: broadcast root %d outside the world of %d", c.rank, root, c.size)
	}
	p := unsafe.Pointer(unsafe.SliceData(buf))
	return c.do("MPI_Bcast", func() error {
		for off := 0; off < len(buf); off += maxCount {
			count := min(len(buf)-off, maxCount)
			if rc := c.lib.bcast(unsafe.Add(p, off), int32(count), c.lib.h.byteT, int32(root), c.lib.h.commWorld); rc != 0 {
				return c.mpiError(fmt.Sprintf("MPI_Bcast of %d bytes at offset %d from rank %d", count, off, root), rc)
			}
		}
		return nil
	})
}

func (c *mpiComm) Barrier() error {
	return c.do("MPI_Barrier", func() error {
		if rc := c.lib.barrier(c.lib.h.commWorld); rc != 0 {
			return c.mpiError("MPI_Barrier", rc)
		}
		return nil
	})
}

// Close finalises MPI. After a failed or timed-out collective it aborts the
// whole job instead (MPI_Abort, which does not return): finalising would
// wait for workers that will never arrive, and the abort is what ends a
// hung peer.
func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		return nil
	}
	if c.fail != nil {
		c.Abort(1)
		return c.fail
	}
	done := make(chan int32, 1)
	c.calls <- func() { done <- c.lib.finalize() }
	rc := <-done
	close(c.calls)
	c.calls = nil
	if rc != 0 {
		return c.mpiError("MPI_Finalize", rc)
	}
	return nil
}

// Abort ends every worker of the job with the exit code (MPI_Abort). It is
// called from a fresh thread: the MPI thread may be stuck in a collective
// that will never complete. Strictly MPI_THREAD_FUNNELED forbids that; Open
// MPI (TestMPIHungWorkerEndsTheJob) and MPICH 4.0 (the same child under
// mpirun.mpich, by hand) both honour it, and a job being torn down has
// nothing left to protect.
func (c *mpiComm) Abort(code int) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		c.lib.abort(c.lib.h.commWorld, int32(code))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}
