package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// Validate computes, over a whole loader, the token-weighted loss,
// perplexity and next-token accuracy, overall and per subject. It does not
// move the training loader.
//
// A cancelled ctx ends it between two batches with an error wrapping
// ctx.Err(), "validation stopped after N batches": no "train:", since
// ftune eval validates too; the caller says what it was doing. With
// several workers it runs to its end: its sums are all-reduced there, and
// a worker that left would leave the others waiting (Fit agrees on
// stopping at the next step instead).
//
// A trainer with a Validation function (an objective other than the
// next-token loss) runs that instead. On the CPU it recycles memory
// through the pool as Fit does (unless Cfg.HeapOnly).
func (t *Trainer) Validate(ctx context.Context, l Loader) (Metrics, error) {
	if l == nil {
		return nil, fmt.Errorf("train: no validation data")
	}
	// Outside Fit too (a run's before and after, ftune eval): each batch
	// takes the buffers the one before gave back.
	defer t.useCPUPool()()
	if t.Validation != nil {
		return t.Validation(ctx, l)
	}
	l.StartEpoch(0)
	type acc struct{ loss, n, correct float64 }
	per := map[string]*acc{}
	all := &acc{}
	size, rank := t.world()
	picked := ValBatches(l.Len(), t.Cfg.ValMaxBatches)
	var read []float32 // tokenStats' host rows, one buffer for every batch
	for i, k := 0, 0; t.Cfg.ValMaxBatches == 0 || k < t.Cfg.ValMaxBatches; i++ {
		if size == 1 && ctx.Err() != nil {
			return nil, fmt.Errorf("validation stopped after %d batches: %w", i, ctx.Err())
		}
		b, err := l.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if !picked(i) {
			if err := b.Release(); err != nil {
				return nil, err
			}
			continue
		}
		for _, s := range b.Subjects {
			if per[s] == nil {
				per[s] = &acc{}
			}
		}
		if k++; (k-1)%size != rank {
			continue // another worker's batch
		}
		rowLoss, rowN, rowCorrect, err := t.validateBatch(b, &read)
		if err != nil {
			return nil, err
		}
		for r := range rowN {
			s := b.Subjects[r]
			for _, a := range []*acc{all, per[s]} {
				a.loss += rowLoss[r]
				a.n += rowN[r]
				a.correct += rowCorrect[r]
			}
		}
	}
	if size > 1 {
		// Sum the workers' shares, subjects in one order everywhere.
		names := make([]string, 0, len(per))
		for s := range per {
			names = append(names, s)
		}
		sort.Strings(names)
		accs := append([]*acc{all}, make([]*acc, len(names))...)
		for i, s := range names {
			accs[1+i] = per[s]
		}
		buf := make([]float64, 0, 3*len(accs))
		for _, a := range accs {
			buf = append(buf, a.loss, a.n, a.correct)
		}
		if err := t.Comm.AllReduceSumF64(buf); err != nil {
			return nil, fmt.Errorf("train: all-reduce of validation sums: %w", err)
		}
		for i, a := range accs {
			a.loss, a.n, a.correct = buf[3*i], buf[3*i+1], buf[3*i+2]
		}
	}
	if all.n == 0 {
		return nil, fmt.Errorf("train: validation data has no labelled token")
	}
	m := Metrics{}
	put := func(prefix string, a *acc) {
		m[prefix+"loss"] = a.loss / a.n
		m[prefix+"perplexity"] = math.Exp(a.loss / a.n)
		m[prefix+"token_accuracy"] = a.correct / a.n
	}
	put("val/", all)
	// Each named subject has its own keys, a run on one data file too
	// (equal to val/'s then): the report's table names its row after the
	// data instead of "all".
	for s, a := range per {
		if s != "" && a.n > 0 {
			put("val/"+s+"/", a)
		}
	}
	return m, nil
}

// validateBatch is tokenStats of one batch's forward, on an inference
// tape: the forward gives its activations back as it goes and its logits
// and the batch when read, so that validation takes its buffers from the
// CPU pool (or a GPU's allocator) and leaves them there for the next
// batch and step, instead of to Go's collector. *read is the host buffer
// the logits are read into, kept from batch to batch (tokenStats).
func (t *Trainer) validateBatch(b Batch, read *[]float32) (loss, n, correct []float64, err error) {
	defer tensor.ServeFromCPUPool()()
	tp := autograd.NewInference()
	in := b
	if t.Forward == nil {
		// The metrics come from the logits (tokenStats): the model's own
		// loss would be one more pass over them.
		in.Labels = nil
	}
	out, err := t.forward(tp, in, false)
	if err != nil {
		return nil, nil, nil, err
	}
	loss, n, correct, *read = tokenStats(out.Logits.Value, b.Labels, *read)
	outs := []*tensor.Tensor{out.Logits.Value}
	if out.Loss != nil {
		outs = append(outs, out.Loss.Value)
	}
	// ReleasePass: what a Trainer.Forward read after the model's pass.
	err = errors.Join(tp.ReleasePass(), tensor.ReleaseAll(outs...), b.Release())
	return loss, n, correct, err
}

// tokenStats returns per row the summed cross-entropy of shifted labels,
// the number of labelled tokens and how many the argmax got right, in
// float64. It reads the logits a few MiB of rows at a time into buf
// (grown when too small, and returned for the next batch): one float64
// copy of them all would be twice their size (68 MiB a batch on the main
// job), and a fresh copy of each chunk was a batch's logits again for the
// collector every batch, which at GOGC 100 let a 29-batch validation pile
// up about 70 MiB of them on tiny-base (the heap's goal is twice what is
// live, the CPU pool's buffers included) and raise the run's peak RSS
// from 188 to 265 MiB (TestMemoryValidationHeapPerBatch in recipe).
func tokenStats(logits, labels *tensor.Tensor, buf []float32) (loss, n, correct []float64, _ []float32) {
	B, T, V := logits.Dim(0), logits.Dim(1), logits.Dim(2)
	flat := logits.Reshape(B*T, V)
	lb := labels.I64()
	loss, n, correct = make([]float64, B), make([]float64, B), make([]float64, B)
	chunk := max(1, (4<<20)/(4*V))
	for r0 := 0; r0 < B*T; r0 += chunk {
		rows := min(chunk, B*T-r0)
		if cap(buf) < rows*V {
			buf = make([]float32, chunk*V) // a whole chunk (4 MiB): every later batch fits
		}
		var lg []float32
		lg, buf = readF32(flat.Narrow(0, r0, rows), buf)
		for r := r0; r < r0+rows; r++ {
			b, t := r/T, r%T
			if t+1 == T {
				continue
			}
			y := int(lb[r+1])
			if y == nn.IgnoreIndex {
				continue
			}
			row := lg[(r-r0)*V : (r-r0+1)*V]
			mx, arg := math.Inf(-1), 0
			for j, v := range row {
				if float64(v) > mx {
					mx, arg = float64(v), j
				}
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v) - mx)
			}
			loss[b] += mx + math.Log(z) - float64(row[y])
			n[b]++
			if arg == y {
				correct[b]++
			}
		}
	}
	return loss, n, correct, buf
}

// readF32 is t.F32() into buf (grown when too small; returned): t's
// values as float32 on the host, without a fresh slice each read. A
// converted or contiguous copy made on the way is released once read.
func readF32(t *tensor.Tensor, buf []float32) (vals, grown []float32) {
	c := t.To(tensor.F32).Contiguous()
	n := c.Numel()
	if cap(buf) < n {
		buf = make([]float32, n)
	}
	vals = buf[:n]
	err := c.Backend().ToHost(c, vals)
	if c.Storage() != t.Storage() {
		err = errors.Join(err, tensor.Release(c))
	}
	if err != nil {
		panic(&tensor.Error{Err: err}) // as F32's download does
	}
	return vals, buf
}

// ValBatches says which of an epoch's n validation batches a validation
// capped at max batches evaluates: max of them spread evenly over the
// epoch, the first included (batch ⌈j·n/max⌉ for j < max), so that a cap
// samples the whole held-out set instead of its beginning (held-out rows
// keep their file's order, which may be by topic); every batch when max
// is 0 or at least n.
func ValBatches(n, max int) func(i int) bool {
	if max <= 0 || max >= n {
		return func(int) bool { return true }
	}
	return func(i int) bool { return i == 0 || i*max/n != (i-1)*max/n }
}
