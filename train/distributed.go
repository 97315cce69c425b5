package train

import (
	"fmt"

	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// Data-parallel training (Trainer.Comm with more than one worker).
//
// Every worker reads the same loader stream (the data is deterministic
// from the seeds), so every worker holds every micro-batch. A step of
// GradAccum = K micro-batches is split between N workers in one of two
// ways:
//
//   - K a multiple of N: by whole micro-batches. Worker r runs slots
//     [r·K/N, (r+1)·K/N) of the step exactly as one process runs them (same
//     rows, same padding, same scaling) and skips the others. With the
//     slots summed over a fixed tree (distributed_accum.go) and N = 2, the
//     all-reduced gradient is bit for bit one process's, and so is every
//     update. With N > 2 the MPI library chooses the order in which it
//     adds the N partial sums (recursive doubling, a ring or a tree,
//     depending on the message size and the library), which is not the
//     one-process tree's order: float32 rounding, not bits.
//   - Otherwise: by rows. Worker r runs rows [r·B/N, (r+1)·B/N) of each
//     micro-batch of B rows, padded to the micro-batch's length as one
//     process pads it. Its loss is the mean over its rows' labelled tokens
//     weighted by its share of the micro-batch's labelled tokens (which
//     every worker can count), so the sum over workers is the micro-batch's
//     mean loss as one process computes it, and so is the gradient, up to
//     the order of float additions: one process's weight gradient XᵀG sums
//     over all the micro-batch's tokens inside one matrix product, the
//     workers over their halves and then across, a relative difference
//     near float32's 1e-7 per add that AdamW can amplify where a gradient
//     element nearly cancels.
//
// The gradients are summed across workers in buckets, overlapped with the
// backward of each worker's last micro-batch of the step
// (distributed_sync.go), and so is the loss, by micro-batch and added in
// their order (one process's sum, bit for bit, when whole micro-batches
// are split); every worker then takes the same optimizer step on
// replicated state. An objective that logs figures of its own per step
// (train/dpo's rewards) gathers them alike, in a callback every worker
// runs.
//
// Random streams that a micro-batch draws per row (LoRA dropout) are kept
// in step by Trainer.SkipRows; NEFTune noise, keyed on the loader position,
// reads the worker's rows from Trainer.MicroShard. Stopping (Ctrl-C,
// MaxTime) is agreed at step boundaries: a step is never abandoned half
// way, since the other workers would wait for its all-reduce.

// gradBucketFloats is the all-reduce bucket: 16 MiB of float32.
var gradBucketFloats = 4 << 20 // a variable for tests of the bucketing

func (t *Trainer) world() (size, rank int) {
	if t.Comm == nil {
		return 1, 0
	}
	return t.Comm.Size(), t.Comm.Rank()
}

// shardRows is worker rank's rows [r0, r1) of a micro-batch of rows rows.
func shardRows(rows, size, rank int) (r0, r1 int) {
	return rank * rows / size, (rank + 1) * rows / size
}

// MicroShard is the rows of the running micro-batch this worker computes,
// [Row0, Row0+its batch's rows), out of Rows (one process: 0 and all).
func (t *Trainer) MicroShard() (row0, rows int) { return t.shardRow0, t.shardRows }

// Shard returns rows [r0, r1) of b on be, padded as b is (same length),
// with its own token counts and tensors made for it alone (Fresh), or b
// itself when the rows are all of b: an objective whose rows have several
// roles (KTO's examples and its mismatched rows) runs a forward on each.
func Shard(b Batch, r0, r1 int, be tensor.Backend) Batch {
	s := shard(b, r0, r1, be)
	s.Fresh = r0 != 0 || r1 != b.InputIDs.Dim(0)
	return s
}

// shard returns rows [r0, r1) of b, padded as b is (same length), with its
// own token counts.
func shard(b Batch, r0, r1 int, be tensor.Backend) Batch {
	B, T := b.InputIDs.Dim(0), b.InputIDs.Dim(1)
	if r0 == 0 && r1 == B {
		return b
	}
	n := r1 - r0
	cut := func(x *tensor.Tensor) *tensor.Tensor {
		if x == nil {
			return nil
		}
		rows := x.I64()[r0*T : r1*T]
		if x.DType() == tensor.I32 { // the key mask and segments stay int32
			v := make([]int32, len(rows))
			for i, r := range rows {
				v[i] = int32(r)
			}
			return tensor.FromHost(be, tensor.I32, v, n, T)
		}
		return tensor.FromHost(be, tensor.I64, rows, n, T)
	}
	out := Batch{Subjects: b.Subjects[r0:r1]}
	out.InputIDs, out.Labels, out.AttentionMask, out.Segments = cut(b.InputIDs), cut(b.Labels), cut(b.AttentionMask), cut(b.Segments)
	if b.PositionIDs != nil {
		out.PositionIDs = b.PositionIDs[r0*T : r1*T]
	}
	if out.AttentionMask != nil {
		for _, m := range out.AttentionMask.I64() {
			out.Tokens += int(m)
		}
	}
	for i, y := range out.Labels.I64() {
		if i%T > 0 && y != nn.IgnoreIndex { // as Collate counts
			out.Labelled++
		}
	}
	return out
}

// SplitsMicroBatches reports whether the workers split each step by
// whole micro-batches (GradAccum a multiple of the workers) rather than
// by rows.
func (t *Trainer) SplitsMicroBatches() bool {
	size, _ := t.world()
	return size > 1 && max(t.Cfg.GradAccum, 1)%size == 0
}

// runMicro runs this worker's part of micro-batch b, the step's slot-th,
// and returns its share of the step's loss sum.
func (t *Trainer) runMicro(b Batch, slot int) (float64, error) {
	size, rank := t.world()
	switch {
	case size == 1:
		return t.microBatch(b)
	case t.SplitsMicroBatches():
		if slot/(t.Cfg.GradAccum/size) != rank { // another worker's
			return 0, t.skipRows(b, 0, b.InputIDs.Dim(0))
		}
		return t.microBatch(b)
	}
	return t.shardMicroBatch(b)
}

// shardMicroBatch runs this worker's rows of micro-batch b and returns its
// share of b's mean loss.
func (t *Trainer) shardMicroBatch(b Batch) (float64, error) {
	size, rank := t.world()
	B := b.InputIDs.Dim(0)
	r0, r1 := shardRows(B, size, rank)
	local := shard(b, r0, r1, t.Model.Backend)
	if local.Labelled == 0 { // nothing to learn from here: draw as if run
		return 0, t.skipRows(b, 0, B)
	}
	if err := t.skipRows(b, 0, r0); err != nil {
		return 0, err
	}
	t.shardRow0, t.shardRows = r0, B
	defer func() { t.shardRow0, t.shardRows = 0, 0 }()
	loss, err := t.microBatchScaled(local, float64(local.Labelled)/float64(b.Labelled))
	if err != nil {
		return 0, err
	}
	return loss, t.skipRows(b, r1, B)
}

func (t *Trainer) skipRows(b Batch, r0, r1 int) error {
	if t.SkipRows == nil || r0 >= r1 {
		return nil
	}
	return t.SkipRows(b, r0, r1)
}

// gradHost is a gradient's values on the host: the tensor's own memory on
// the CPU, a copy elsewhere (setGradHost writes it back).
func gradHost(g *tensor.Tensor) []float32 {
	if g.Device().Kind == tensor.CPU && g.DType() == tensor.F32 {
		return tensor.F32Data(g)
	}
	return g.F32()
}

func setGradHost(g *tensor.Tensor, v []float32) {
	if g.Device().Kind == tensor.CPU && g.DType() == tensor.F32 {
		return // gradHost returned the tensor's memory
	}
	g.CopyFrom(tensor.FromHost(g.Backend(), tensor.F32, v, g.Shape()...).To(g.DType()))
}

// agreeStop makes every worker stop at the same step boundary: a worker
// interrupted or out of time stops them all, with its reason.
func (t *Trainer) agreeStop(interrupted, outOfTime bool) (string, error) {
	flags := []float64{b2f(interrupted), b2f(outOfTime)}
	if err := t.Comm.AllReduceSumF64(flags); err != nil {
		return "", fmt.Errorf("train: agreeing whether to stop before step %d: %w", t.State.Step+1, err)
	}
	switch {
	case flags[0] > 0:
		return "interrupted", nil
	case flags[1] > 0:
		return "max_time", nil
	}
	return "", nil
}
