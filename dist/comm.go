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
	// Broadcast copies root's buf into every other worker's buf (same
	// length everywhere).
	Broadcast(buf []byte, root int) error
	Barrier() error
	// Engine names what carries the collectives ("single", "mpi:Open MPI
	// 4.1.4", ...), for the run's env.json.
	Engine() string
	Close() error
}

// Single is the world of one process: every collective is the identity.
func Single() Comm { return single{} }

type single struct{}

func (single) Rank() int                            { return 0 }
func (single) Size() int                            { return 1 }
func (single) AllReduceSumF32(buf []float32) error  { return nil }
func (single) AllReduceSumF64(buf []float64) error  { return nil }
func (single) Broadcast(buf []byte, root int) error { return nil }
func (single) Barrier() error                       { return nil }
func (single) Engine() string                       { return "single" }
func (single) Close() error                         { return nil }
