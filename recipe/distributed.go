package recipe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/kernels/dropout"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/train"
	"github.com/ftune/ftune/train/dpo"
)

// Data-parallel runs (Options.Comm with several workers): every worker
// loads the same base and data and trains its micro-batches of each step,
// or its rows of each micro-batch (train/distributed.go); rank 0 alone writes (the run folder, metrics,
// checkpoints, exports, held-out answers), and the other ranks log to
// standard error with a "[rank r]" prefix. A checkpoint holds what one
// process's holds, so a run saved by N workers resumes on any number.

// world is the job's size and this worker's rank (1 and 0 without Comm).
func (o Options) world() (size, rank int) {
	if o.Comm == nil {
		return 1, 0
	}
	return o.Comm.Size(), o.Comm.Rank()
}

func (o Options) engine() string {
	if o.Comm == nil {
		return "single"
	}
	return o.Comm.Engine()
}

// validateWorld refuses what several workers cannot run as one process.
func (o Options) validateWorld() error {
	size, _ := o.world()
	if size > 1 && o.GradAccum%size != 0 && o.BatchSize < size {
		return fmt.Errorf("recipe: training.batch_size %d is smaller than the %d workers: with grad_accum %d (not a multiple of the workers) each worker computes its share of every micro-batch's rows, so some would have none; raise batch_size to at least %d, or make grad_accum a multiple of %d (each worker then runs whole micro-batches; the batch is global: the step does not change with the number of workers)", o.BatchSize, size, o.GradAccum, size, size)
	}
	return nil
}

// The gradient exchange's knobs, for measuring it (dist/doc.go, Scaling):
// FTUNE_DIST_OVERLAP=0 all-reduces after the backward instead of during
// it; FTUNE_DIST_BUCKET_MB sets the all-reduce bucket size (default 16).
const (
	overlapEnv = "FTUNE_DIST_OVERLAP"
	bucketEnv  = "FTUNE_DIST_BUCKET_MB"
)

// dataParallelEnv reads the knobs; a value it does not understand is an
// error naming the variable.
func dataParallelEnv() (train.DataParallel, error) {
	var dp train.DataParallel
	switch v := os.Getenv(overlapEnv); v {
	case "", "1":
	case "0":
		dp.SyncAfterBackward = true
	default:
		return dp, fmt.Errorf("recipe: %s=%q: want 0 (all-reduce after the backward) or 1 (during it, the default)", overlapEnv, v)
	}
	if v := os.Getenv(bucketEnv); v != "" {
		mb, err := strconv.ParseFloat(v, 64)
		if err != nil || !(mb > 0) || mb > 1024 {
			return dp, fmt.Errorf("recipe: %s=%q: want a bucket size in MiB in (0, 1024]", bucketEnv, v)
		}
		dp.BucketFloats = max(1, int(mb*(1<<20)/4))
	}
	return dp, nil
}

// hostMPIEnv lets workers on CUDA without NCCL all-reduce host copies of
// their gradients over MPI instead (printed as a warning): never silently.
const hostMPIEnv = "FTUNE_DIST_HOST_MPI"

// deviceComm is the comm workers on device dev exchange through: NCCL
// (opened by openNCCL over comm, on the worker's GPU) for CUDA workers,
// comm itself otherwise. CUDA workers without NCCL are refused, naming
// what is missing, unless FTUNE_DIST_HOST_MPI=1 asks for host copies
// over MPI.
func deviceComm(comm dist.Comm, dev tensor.Device, log io.Writer, openNCCL func(dist.Comm, int) (dist.Comm, error)) (dist.Comm, error) {
	if comm == nil || comm.Size() == 1 || dev.Kind != tensor.CUDA {
		return comm, nil
	}
	nccl, err := openNCCL(comm, dev.Index)
	if err == nil {
		fmt.Fprintf(log, "collectives: %s\n", nccl.Engine())
		return nccl, nil
	}
	if os.Getenv(hostMPIEnv) == "1" {
		fmt.Fprintf(log, "warning: no NCCL (%v): all-reducing host copies of the GPU gradients over %s, as %s=1 asks\n", err, comm.Engine(), hostMPIEnv)
		return comm, nil
	}
	return nil, fmt.Errorf("recipe: %d workers on CUDA need NCCL for their collectives, and %w; install it, or set %s=1 to all-reduce host copies of the gradients over MPI instead (slower)", comm.Size(), err, hostMPIEnv)
}

// useDeviceComm switches the session's comm to NCCL for CUDA workers
// (deviceComm) and returns what closes it at the end of the run (the
// caller closes the MPI comm it passed in).
func (s *session) useDeviceComm() (closeNCCL func(), err error) {
	comm := s.o.Comm
	if s.o.Comm, err = deviceComm(comm, s.o.device.Backend.Device(), s.log, dist.OpenNCCL); err != nil {
		return nil, err
	}
	if s.o.Comm == comm {
		return func() {}, nil
	}
	return func() {
		if err := s.o.Comm.Close(); err != nil {
			fmt.Fprintln(s.log, "warning:", err)
		}
	}, nil
}

// workerShare says how the workers split a step (train.Trainer.SplitsMicroBatches).
func workerShare(gradAccum, size int) string {
	if gradAccum%size == 0 {
		return fmt.Sprintf("each runs %d of every step's %d micro-batches", gradAccum/size, gradAccum)
	}
	return "each computes its share of every micro-batch's rows (grad_accum is not a multiple of the workers)"
}

// rankWriter prefixes every line with the worker's rank.
type rankWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	midway bool // the last write did not end its line
}

func newRankWriter(w io.Writer, rank int) *rankWriter {
	return &rankWriter{w: w, prefix: fmt.Appendf(nil, "[rank %d] ", rank)}
}

func (r *rankWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []byte
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !r.midway {
			out = append(out, r.prefix...)
		}
		out = append(out, line...)
		r.midway = line[len(line)-1] != '\n'
	}
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// runWorker is Run on a rank other than 0: the same loading, evaluations
// (validation is sharded, so every rank takes part) and training, without
// writing anything.
func runWorker(ctx context.Context, s *session) (*Result, error) {
	o := s.o
	if err := s.gatherRanks(); err != nil {
		return nil, err
	}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	if err := s.checkPreferenceTraining(); err != nil {
		return nil, err
	}
	if s.o.Steps == 0 {
		perEpoch := (s.data.trainLen() + o.BatchSize - 1) / o.BatchSize
		s.o.Steps = max(1, o.Epochs*((perEpoch+o.GradAccum-1)/o.GradAccum))
	}
	t, err := s.trainer("")
	if err != nil {
		return nil, err
	}
	if o.ResumeDir != "" {
		// Rank 0 holds the run folder's lock; this rank only reads the
		// checkpoint, which must be on a file system every rank sees.
		ck, err := train.ResumeLatest(filepath.Join(o.ResumeDir, "checkpoints"), t, func(w string) { fmt.Fprintln(s.log, "warning:", w) })
		if err != nil {
			return nil, fmt.Errorf("recipe: resume %s: %w", o.ResumeDir, err)
		}
		fmt.Fprintf(s.log, "resumed from %s at step %d\n", ck, t.State.Step)
	}
	// Where rank 0 checks (Run): before the validation's collectives.
	if err := t.CheckInSync(); err != nil {
		return nil, err
	}
	res := &Result{Adapters: map[string]string{}, Subjects: s.data.subjects, TrainRows: s.data.trainLen()}
	evals := s.data.evaluable(io.Discard)
	if evals && o.ResumeDir == "" {
		if res.Before, err = s.evaluate(ctx, t); err != nil {
			return nil, err
		}
	}
	if err := t.Fit(ctx); err != nil {
		return nil, err
	}
	res.Steps, res.Losses, res.Tokens, res.Stopped = t.State.Step, t.State.Losses, t.State.Tokens, t.State.StopReason
	if !interrupted(ctx, t) && evals {
		if res.After, err = s.evaluate(ctx, t); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// interrupted says whether training stopped on an interrupt: this
// process's, or (with several workers) another worker's, which Fit agreed
// on; every worker then skips the final evaluation, whose validation is a
// collective.
func interrupted(ctx context.Context, t *train.Trainer) bool {
	return ctx.Err() != nil || t.State.StopReason == "interrupted"
}

// worldEnv is what env.json records of the job.
func (s *session) worldEnv() track.Option {
	size, _ := s.o.world()
	return track.WithEnv(track.EnvOptions{WorldSize: size, Engine: s.o.engine(), Ranks: s.ranks})
}

// rankDescription is how long a worker's "host device" line may be.
const rankDescription = 256

// gatherRanks tells every worker (rank 0 records it) each rank's host and
// device: one broadcast per rank, at the start of the run.
func (s *session) gatherRanks() error {
	size, rank := s.o.world()
	if size == 1 {
		return nil
	}
	host, _ := os.Hostname()
	mine := host + " " + s.o.device.Backend.Device().String()
	s.ranks = make([]string, size)
	for root := range size {
		buf := make([]byte, rankDescription)
		if root == rank {
			copy(buf, mine)
		}
		if err := s.o.Comm.Broadcast(buf, root); err != nil {
			return fmt.Errorf("recipe: learning rank %d's host and device: %w", root, err)
		}
		s.ranks[root] = string(bytes.TrimRight(buf, "\x00"))
	}
	return nil
}

// loadDataInTurn runs load, the data's reading and tokenizing, so that a
// data-parallel job with a token cache tokenizes once per machine: the
// first worker of each machine (by host name) builds or checks the caches
// while the others wait, then they read what it wrote. Without the turns
// every worker tokenized the same data at once, N times the CPU time on
// the cores they share, each then writing the same caches. Every worker
// passes one Barrier here, in the same place in its order of collectives;
// a worker whose load fails returns without it and the job is aborted
// (cmd/ftune), not left waiting. Without a token cache every worker
// tokenizes for itself, and rank 0 says how to avoid it; preference
// records, which are not cached, are tokenized by every worker at once.
func (s *session) loadDataInTurn(load func() error) error {
	size, rank := s.o.world()
	if size == 1 || s.o.preference() { // preference records are not cached
		return load()
	}
	if s.o.TokenCache == "" {
		if rank == 0 {
			fmt.Fprintf(s.log, "note: each of the %d workers reads and tokenizes the data itself; with a token cache (--token-cache DIR, data.token_cache) the first worker of each machine does it and the others read the cache\n", size)
		}
		return load()
	}
	first := s.firstOnHost(rank)
	if first == rank {
		if err := load(); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(s.log, "data: waiting for rank %d, the first worker on this machine, to read or fill its token cache; then this one reads %s\n", first, s.o.TokenCache)
	}
	if err := s.o.Comm.Barrier(); err != nil {
		return fmt.Errorf("recipe: waiting for the first worker of each machine to fill the token cache %s (FTUNE_DIST_TIMEOUT bounds the wait; `ftune data prepare` before the job tokenizes ahead of it): %w", s.o.TokenCache, err)
	}
	if first == rank {
		return nil
	}
	return load()
}

// firstOnHost is the lowest rank on rank's machine (gatherRanks' hosts).
func (s *session) firstOnHost(rank int) int {
	host, _, _ := strings.Cut(s.ranks[rank], " ")
	for r := range rank {
		if other, _, _ := strings.Cut(s.ranks[r], " "); other == host {
			return r
		}
	}
	return rank
}

// WorkerDevice is the device a data-parallel worker of local rank local
// (its index among the workers of its machine) trains on: "cuda" names
// that worker's GPU, "cuda:<local>", and so does "auto" when a GPU is
// usable (else the CPU); "cpu" and an explicit "cuda:N" stay as given.
//
// A launcher that does not say the local rank (local < 0) leaves the
// device as configured.
func WorkerDevice(device string, local int) string {
	d := strings.ToLower(strings.TrimSpace(device))
	switch {
	case local < 0:
		return device
	case d == "cuda":
		return fmt.Sprintf("cuda:%d", local)
	case d == "" || d == "auto":
		if ok, _ := cudabackend.Available(); ok {
			return fmt.Sprintf("cuda:%d", local)
		}
		return "cpu"
	}
	return device
}

// LoRA dropout draws its mask from each layer's own stream, one 64-bit
// draw per 4 elements of the layer's input [rows, T, in], rows in batch
// order (an adapter's rows only, when rows are routed per subject). A
// worker that computes rows [r0, r1) of a micro-batch advances each stream
// past the rows before and after its own, and so draws exactly the masks
// one process draws for those rows; that needs every row to start on a
// whole draw (T·in a multiple of 4, checkDropoutSharding).

// checkDropoutSharding refuses dropout that rows cannot split exactly.
func (s *session) checkDropoutSharding() error {
	if size, _ := s.o.world(); size == 1 || s.o.Dropout == 0 || s.o.GradAccum%size == 0 {
		return nil // whole micro-batches per worker: nothing straddles
	}
	for _, name := range slices.Sorted(maps.Keys(s.adapters)) {
		for mod, l := range s.adapters[name].Layers {
			if in := l.A.Value.Dim(1); l.Dropout > 0 && in%4 != 0 {
				return fmt.Errorf("recipe: LoRA dropout on %s (%d inputs, not a multiple of 4) cannot be split across workers exactly: a dropout draw covers 4 inputs and would straddle two workers' rows; set lora dropout to 0 or train on one process", mod, in)
			}
		}
	}
	return nil
}

// skipRows advances every dropout stream past rows [r0, r1) of micro-batch
// b (train.Trainer.SkipRows): past the masks one process draws for them.
// Under kto those are the examples' rows only: the forwards of the
// mismatched rows (the KL estimate's) run without a tape, so without
// dropout; under dpo every row's (the reference's forward draws none, the
// policy's one mask for each row).
func (s *session) skipRows(b train.Batch, r0, r1 int) error {
	T := b.InputIDs.Dim(1)
	for name, a := range s.adapters {
		rows := r1 - r0
		if s.routed != nil || s.o.kto() {
			rows = 0
			for _, subj := range b.Subjects[r0:r1] {
				if s.routed != nil && subj == name || s.o.kto() && subj != dpo.RowMismatched {
					rows++
				}
			}
		}
		if rows == 0 {
			continue
		}
		for _, l := range a.Layers {
			if l.Dropout == 0 {
				continue
			}
			// Four mask elements a draw (kernels/dropout), the last one
			// of a mask perhaps partly used: a row's are a whole number of
			// draws where workers split rows (checkDropoutSharding), and a
			// whole micro-batch's are its mask's draws.
			l.SkipDropout(dropout.Draws(rows * T * l.A.Value.Dim(1)))
		}
	}
	return nil
}

// workerLog is where a rank other than 0 logs: w (Options.WorkerLog),
// each line prefixed with the rank; nowhere when w is nil (a program
// embedding ftune had its workers' lines on its standard error).
func workerLog(w io.Writer, rank int) io.Writer {
	if w == nil {
		return io.Discard
	}
	return newRankWriter(w, rank)
}
