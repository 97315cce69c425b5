package dist

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// ncclComm is a Comm over NCCL for the workers of a job whose tensors are
// on GPUs: one NCCL rank per worker, on the GPU it trains on, bootstrapped
// by the job's MPI comm (rank 0's ncclUniqueId handed round by
// MPI_Bcast). Its collectives take host slices, as every Comm does: each
// is staged through a buffer on the GPU (copied in, reduced there by NCCL
// over NVLink, PCIe or the network, copied out). The trainer's gradients
// are on the GPU and reach the host first (train's gradHost), so a bucket
// crosses PCIe four times; device-resident buckets need the CUDA backend
// to hand out its tensors' device addresses, which it does not yet.
//
// Every NCCL call runs with the GPU's primary context current on the
// calling OS thread (the context the CUDA backend's tensors live in), on
// the legacy default stream, and waits for its result by polling the
// stream and ncclCommGetAsyncError: past the collective timeout the NCCL
// communicator is aborted (ncclCommAbort), the error names the rank, and
// Close then aborts the whole job through the MPI comm.
type ncclComm struct {
	boot       Comm // MPI: the unique id; the job's abort
	lib        *ncclLib
	rank, size int
	device     int
	ctx        uintptr
	comm       uintptr
	engine     string
	timeout    time.Duration

	mu      sync.Mutex
	fail    error
	closed  bool
	scratch uintptr // device staging buffer
	cap     int     // its bytes
}

// OpenNCCL opens an NCCL communicator over the workers of boot (a job's
// MPI comm, or Single), this worker on CUDA device `device`. Every worker
// calls it at the same point. The error names what is missing (the
// library, the driver, the device) or which worker failed.
func OpenNCCL(boot Comm, device int) (Comm, error) {
	l, err := loadNCCL()
	if err != nil {
		return nil, err
	}
	c := &ncclComm{boot: boot, lib: l, rank: boot.Rank(), size: boot.Size(), device: device, timeout: DefaultTimeout}
	if s := os.Getenv(timeoutEnv); s != "" {
		if c.timeout, err = time.ParseDuration(s); err != nil || c.timeout <= 0 {
			return nil, fmt.Errorf("dist: %s=%q is not a positive duration (such as 10m)", timeoutEnv, s)
		}
	}
	var n, dev int32
	if err := cuErr("cuDeviceGetCount", l.cuDeviceGetCount(&n)); err != nil {
		return nil, fmt.Errorf("nccl rank %d: %w", c.rank, err)
	}
	if device < 0 || device >= int(n) {
		return nil, fmt.Errorf("nccl rank %d: CUDA device %d does not exist (%d found)", c.rank, device, n)
	}
	if err := cuErr("cuDeviceGet", l.cuDeviceGet(&dev, int32(device))); err != nil {
		return nil, fmt.Errorf("nccl rank %d: %w", c.rank, err)
	}
	if err := cuErr("cuDevicePrimaryCtxRetain", l.cuPrimaryCtxRetain(&c.ctx, dev)); err != nil {
		return nil, fmt.Errorf("nccl rank %d: %w", c.rank, err)
	}
	var id ncclUniqueID
	if c.rank == 0 {
		if err := l.err("ncclGetUniqueId", l.getUniqueID(&id)); err != nil {
			return nil, fmt.Errorf("nccl rank 0: %w", err)
		}
	}
	if err := boot.Broadcast(id.internal[:], 0); err != nil {
		return nil, fmt.Errorf("nccl rank %d: handing round the unique id: %w", c.rank, err)
	}
	// ncclCommInitRank waits for every rank: bounded like a collective.
	done := make(chan error, 1)
	go func() {
		done <- c.onDevice(func() error {
			return l.err("ncclCommInitRank", l.commInitRank(&c.comm, int32(c.size), id, int32(c.rank)))
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("nccl rank %d: %w", c.rank, err)
		}
	case <-time.After(c.timeout):
		return nil, fmt.Errorf("nccl rank %d: ncclCommInitRank did not complete within %v: another worker is hung, dead or cannot reach this one", c.rank, c.timeout)
	}
	var v int32
	l.getVersion(&v)
	c.engine = fmt.Sprintf("nccl:%s (host-staged; bootstrap %s)", ncclVersion(int(v)), boot.Engine())
	return c, nil
}

// onDevice runs fn on a locked OS thread with the GPU's context current.
func (c *ncclComm) onDevice(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cuErr("cuCtxSetCurrent", c.lib.cuCtxSetCurrent(c.ctx)); err != nil {
		return err
	}
	return fn()
}

func (c *ncclComm) Rank() int      { return c.rank }
func (c *ncclComm) Size() int      { return c.size }
func (c *ncclComm) Engine() string { return c.engine }

func (c *ncclComm) AllReduceSumF32(buf []float32) error {
	return c.staged("ncclAllReduce(ncclFloat32)", unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 4, func(p uintptr) int32 {
		return c.lib.allReduce(p, p, uintptr(len(buf)), ncclFloat32, ncclSum, c.comm, 0)
	})
}

func (c *ncclComm) AllReduceSumF64(buf []float64) error {
	return c.staged("ncclAllReduce(ncclFloat64)", unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 8, func(p uintptr) int32 {
		return c.lib.allReduce(p, p, uintptr(len(buf)), ncclFloat64, ncclSum, c.comm, 0)
	})
}

// IAllReduceSumF32 completes before it returns: the staging copies are
// synchronous, so there is nothing to overlap on this path.
func (c *ncclComm) IAllReduceSumF32(buf []float32) (Request, error) {
	if err := c.AllReduceSumF32(buf); err != nil {
		return nil, err
	}
	return Done{}, nil
}

func (c *ncclComm) Broadcast(buf []byte, root int) error {
	if root < 0 || root >= c.size {
		return fmt.Errorf("nccl rank %d: broadcast root %d outside the world of %d", c.rank, root, c.size)
	}
	return c.staged(fmt.Sprintf("ncclBroadcast from rank %d", root), unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 1, func(p uintptr) int32 {
		return c.lib.broadcast(p, p, uintptr(len(buf)), ncclUint8, int32(root), c.comm, 0)
	})
}

func (c *ncclComm) Barrier() error { return c.AllReduceSumF32(make([]float32, 1)) }

// staged copies n elements of size bytes at host into the staging buffer,
// runs op on it, waits for it and copies the result back.
func (c *ncclComm) staged(call string, host unsafe.Pointer, n, size int, op func(dev uintptr) int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return fmt.Errorf("nccl rank %d: %s after an earlier failure: %w", c.rank, call, c.fail)
	}
	if c.closed {
		return fmt.Errorf("nccl rank %d: %s after Close", c.rank, call)
	}
	if n == 0 {
		return nil
	}
	bytes := n * size
	err := c.onDevice(func() error {
		if bytes > c.cap {
			if c.scratch != 0 {
				c.lib.cuMemFree(c.scratch)
				c.scratch, c.cap = 0, 0
			}
			if err := cuErr("cuMemAlloc", c.lib.cuMemAlloc(&c.scratch, uintptr(bytes))); err != nil {
				return err
			}
			c.cap = bytes
		}
		if err := cuErr("cuMemcpyHtoD", c.lib.cuMemcpyHtoD(c.scratch, host, uintptr(bytes))); err != nil {
			return err
		}
		if err := c.lib.err(call, op(c.scratch)); err != nil {
			return err
		}
		if err := c.wait(call); err != nil {
			return err
		}
		return cuErr("cuMemcpyDtoH", c.lib.cuMemcpyDtoH(host, c.scratch, uintptr(bytes)))
	})
	if err != nil {
		c.fail = fmt.Errorf("nccl rank %d: %w", c.rank, err)
		return c.fail
	}
	return nil
}

// wait polls the stream until the enqueued collective is done, an
// asynchronous NCCL error appears (a peer's network failure), or the
// timeout passes; the last two abort the communicator. On the device
// thread.
func (c *ncclComm) wait(call string) error {
	deadline := time.Now().Add(c.timeout)
	for pause := time.Microsecond; ; pause = min(2*pause, time.Millisecond) {
		rc := c.lib.cuStreamQuery(0)
		if rc == 0 {
			return nil
		}
		if rc != cuErrorNotReady {
			return cuErr("cuStreamQuery after "+call, rc)
		}
		var async int32
		if rc := c.lib.getAsyncError(c.comm, &async); rc != ncclSuccess || (async != ncclSuccess && async != ncclInProgress) {
			c.lib.commAbort(c.comm)
			c.comm = 0
			return c.lib.err(call+" (asynchronous error)", max(rc, async))
		}
		if time.Now().After(deadline) {
			c.lib.commAbort(c.comm)
			c.comm = 0
			return fmt.Errorf("%s did not complete within %v: another worker is hung or dead (the job is aborted)", call, c.timeout)
		}
		time.Sleep(pause)
	}
}

// Close destroys the NCCL communicator (not the bootstrap comm, which its
// owner closes). After a failed collective it aborts the whole job through
// the bootstrap comm instead, as the MPI comm's Close does.
func (c *ncclComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.fail != nil {
		if a, ok := c.boot.(interface{ Abort(int) }); ok {
			a.Abort(1)
		}
		return c.fail
	}
	return c.onDevice(func() error {
		if c.scratch != 0 {
			c.lib.cuMemFree(c.scratch)
		}
		return c.lib.err("ncclCommDestroy", c.lib.commDestroy(c.comm))
	})
}
