package dist

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

// Nonblocking all-reduce (MPI_Iallreduce), for gradients all-reduced while
// the backward pass still runs.
//
// MPI libraries progress a nonblocking collective only inside MPI calls
// (Open MPI's and MPICH's default: no progress thread), so a request left
// alone would do nothing until its MPI_Wait. While requests are pending,
// the MPI thread therefore calls MPI_Test on them every progressEvery
// between the calls it is sent. Every MPI call stays on that one thread.

// progressEvery is how often the MPI thread advances pending requests.
const progressEvery = 200 * time.Microsecond

// mpiRequest is one IAllReduceSumF32: one MPI request per chunk of at most
// maxCount elements. Its fields other than c are touched on the MPI thread
// only.
type mpiRequest struct {
	c       *mpiComm
	call    string
	handles []uint64 // MPI_Request per chunk, written by MPI (see mpi_abi.go)
	done    []bool   // per chunk
	left    int      // chunks not done
	pin     runtime.Pinner
	err     error
}

func (c *mpiComm) IAllReduceSumF32(buf []float32) (Request, error) {
	if len(buf) == 0 {
		return Done{}, nil
	}
	chunks := (len(buf) + maxCount - 1) / maxCount
	r := &mpiRequest{c: c, call: fmt.Sprintf("MPI_Iallreduce(MPI_FLOAT) of %d elements", len(buf)),
		handles: make([]uint64, chunks), done: make([]bool, chunks), left: chunks}
	// MPI reads and writes buf after this call returns: it must stay where
	// it is (Go's collector moves nothing today; the pin says so) and
	// alive until the request completes.
	r.pin.Pin(&buf[0])
	p := unsafe.Pointer(unsafe.SliceData(buf))
	h := c.lib.h
	err := c.do(r.call, func() error {
		for i := range chunks {
			off := i * maxCount
			count := min(len(buf)-off, maxCount)
			if rc := c.lib.iallreduce(h.inPlace, unsafe.Add(p, off*4), int32(count), h.float32T, h.opSum, h.commWorld, &r.handles[i]); rc != 0 {
				// Chunks already started cannot be taken back: the comm is
				// poisoned by this error and Close aborts the job.
				return c.mpiError(fmt.Sprintf("%s at offset %d", r.call, off), rc)
			}
		}
		c.pending = append(c.pending, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Wait completes the request (MPI_Wait on its chunks, on the MPI thread),
// bounded by the comm's timeout like a blocking collective.
func (r *mpiRequest) Wait() error {
	return r.c.do(r.call+": MPI_Wait", func() error {
		for i := range r.handles {
			if r.done[i] || r.err != nil {
				continue
			}
			if rc := r.c.lib.wait(&r.handles[i], r.c.lib.h.statusIgn); rc != 0 {
				r.err = r.c.mpiError("MPI_Wait of "+r.call, rc)
			}
			r.finishChunk(i)
		}
		return r.err
	})
}

func (r *mpiRequest) finishChunk(i int) {
	r.done[i] = true
	if r.left--; r.left == 0 {
		r.pin.Unpin()
		r.c.dropPending(r)
	}
}

// progress advances every pending request (MPI_Test on its open chunks).
// On the MPI thread.
func (c *mpiComm) progress() {
	for _, r := range append([]*mpiRequest(nil), c.pending...) {
		for i := range r.handles {
			if r.done[i] || r.err != nil {
				continue
			}
			var flag int32
			if rc := c.lib.test(&r.handles[i], &flag, c.lib.h.statusIgn); rc != 0 {
				r.err = c.mpiError("MPI_Test of "+r.call, rc)
				r.finishChunk(i)
			} else if flag != 0 {
				r.finishChunk(i)
			}
		}
	}
}

func (c *mpiComm) dropPending(r *mpiRequest) {
	for i, p := range c.pending {
		if p == r {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return
		}
	}
}
