package dist

// Comm is the collective operations data-parallel training needs, over
// the workers of one job. Every worker calls the same operations in the
// same order; a call returns once every worker has made it (or with an
// error naming the rank that failed).
type Comm interface {
	Rank() int // this worker, in [0, Size())
	Size() int // workers in the job
	// AllReduceSumF32 and AllReduceSumF64 replace buf, on every worker,
	// with the element-wise sum of every worker's buf (same length
	// everywhere).
	AllReduceSumF32(buf []float32) error
	AllReduceSumF64(buf []float64) error
	// IAllReduceSumF32 starts AllReduceSumF32 on buf and returns without
	// waiting for the other workers; buf must be neither read nor written
	// until the request's Wait returns. Nonblocking and blocking
	// collectives are matched across workers by the order they are
	// started in, which must be the same on every worker.
	IAllReduceSumF32(buf []float32) (Request, error)
	// Broadcast copies root's buf into every other worker's buf (same
	// length everywhere).
	Broadcast(buf []byte, root int) error
	Barrier() error
	// Engine names what carries the collectives ("single", "mpi:Open MPI
	// 4.1.4", ...), for the run's env.json.
	Engine() string
	Close() error
}

// Request is a collective started without waiting.
type Request interface {
	// Wait returns once the collective has completed on this worker (its
	// buffer then holds the result), or with the error; it waits at most
	// as long as a blocking collective would.
	Wait() error
}

// Done is a request that has already completed with err.
type Done struct{ Err error }

func (d Done) Wait() error { return d.Err }

// Single is the world of one process: every collective is the identity.
func Single() Comm { return single{} }

type single struct{}

func (single) Rank() int                                   { return 0 }
func (single) Size() int                                   { return 1 }
func (single) AllReduceSumF32(buf []float32) error         { return nil }
func (single) AllReduceSumF64(buf []float64) error         { return nil }
func (single) IAllReduceSumF32([]float32) (Request, error) { return Done{}, nil }
func (single) Broadcast(buf []byte, root int) error        { return nil }
func (single) Barrier() error                              { return nil }
func (single) Engine() string                              { return "single" }
func (single) Close() error                                { return nil }

// Abort ends every worker of c's job with the exit code, for a worker
// that fails outside a collective: Close would finalise, and finalising
// waits for the other workers, which wait in a collective for this one
// (in MPI the whole job then hangs until FTUNE_DIST_TIMEOUT). It returns
// only where there is no job to end (one worker, a Comm that cannot
// abort); the caller then exits.
func Abort(c Comm, code int) {
	if a, ok := c.(interface{ Abort(code int) }); ok && c.Size() > 1 {
		a.Abort(code)
	}
}
