package dpo

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/lora"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/train"
)

// Objective is DPO's training loss for a train.Trainer, or KTO's: its
// Forward is the trainer's ForwardFunc and, as a train.Callback placed
// before the metrics logger, it adds the step's rewards to the step's
// metrics.
type Objective struct {
	train.Base
	Model *nn.Model
	// Spec is the loss on pairs (Loader's batches): β, the strength of the
	// pull towards the reference (TRL's default 0.1), and the loss types.
	Spec Spec
	// KTO, when set, is the loss instead: KTO's on unpaired examples
	// (UnpairedLoader's batches), and Spec is not read.
	KTO *KTOSpec
	// Reference runs f with Model as the reference model (the adapter
	// turned off) and restores the adapter after it, f failing or not.
	Reference func(f func() error) error
	// Comm, with several workers, shares validation between them
	// (Evaluate); set it to the trainer's Comm. A step's figures are
	// gathered over the trainer's own Comm (OnStepEnd).
	Comm dist.Comm

	micro []Stats // this worker's micro-batches of the running step, in order
}

// Data-parallel runs. Every worker computes the figures of the
// micro-batches it runs (whole micro-batches: a DPO pair's two rows, and
// a KTO batch's examples with their mismatched rows, are never split) and
// of its share of the validation batches. The figures are exchanged by
// slot, each slot being one micro-batch or batch that exactly one worker
// filled and the others left 0, in one all-reduce (x + 0 = x: the sum is
// exact, whatever its order), and every worker adds the slots up in their
// order: one process's sums, bit for bit, on every worker. Every worker
// takes part in each exchange (the objective is a callback of each), and
// rank 0 logs.

// Forward is train.ForwardFunc: the reference's log-likelihoods without a
// tape, then the policy's on tp, and the DPO loss of the two as Loss.
func (o *Objective) Forward(tp *autograd.Tape, b train.Batch, opt nn.ForwardOptions) (nn.Output, error) {
	loss, st, err := o.loss(tp, b, opt.LossChunk)
	if err != nil {
		return nn.Output{}, err
	}
	o.micro = append(o.micro, st)
	return nn.Output{Loss: loss}, nil
}

func (o *Objective) loss(tp *autograd.Tape, b train.Batch, chunk int) (*autograd.Var, Stats, error) {
	if o.KTO != nil {
		return o.ktoLoss(tp, b, chunk)
	}
	if err := o.Spec.Check(); err != nil {
		return nil, Stats{}, err
	}
	rows, T := b.InputIDs.Dim(0), b.InputIDs.Dim(1)
	if rows%2 != 0 {
		return nil, Stats{}, fmt.Errorf("dpo: a batch of %d rows is not pairs (the chosen rows, then as many rejected)", rows)
	}
	fo := nn.ForwardOptions{RowLosses: true, LossChunk: chunk}
	ref := make([]float64, rows) // a reference-free loss reads none
	if o.Spec.NeedsReference() {
		err := o.Reference(func() (err error) {
			ref, err = o.logLikelihoods(b.Batch, fo)
			return err
		})
		if err != nil {
			return nil, Stats{}, fmt.Errorf("dpo: the reference's forward: %w", err)
		}
	}
	var lengths []int
	if o.Spec.NeedsLengths() {
		lengths = completionLengths(b.Labels.I64(), T)
	}
	return o.policyLoss(tp, b, fo, func(policy []float64) (float64, []float64, Stats, error) {
		return Loss(o.Spec, policy, ref, lengths)
	})
}

// logLikelihoods are the rows' sequence log-likelihoods from the model as
// it is, without a tape: an inference pass, which gives its activations
// back as it goes, so that inside a micro-batch (which serves allocations
// from the CPU pool) the policy's forward takes the same buffers again.
func (o *Objective) logLikelihoods(b nn.Batch, fo nn.ForwardOptions) ([]float64, error) {
	out, err := o.Model.Forward(autograd.NewInference(), b, fo)
	if err != nil {
		return nil, err
	}
	ll := sequenceLogLikelihoods(hostRows(out.RowLoss.Value), b.InputIDs.Dim(1))
	return ll, tensor.Release(out.RowLoss.Value)
}

// policyLoss is the policy's forward on tp and the loss f gives of its
// sequence log-likelihoods (with its gradient in each, and the batch's
// Stats).
func (o *Objective) policyLoss(tp *autograd.Tape, b train.Batch, fo nn.ForwardOptions, f func(policy []float64) (float64, []float64, Stats, error)) (*autograd.Var, Stats, error) {
	T := b.InputIDs.Dim(1)
	out, err := o.Model.Forward(tp, b.Batch, fo)
	if err != nil {
		return nil, Stats{}, err
	}
	var st Stats
	loss, err := tp.HostLoss(out.RowLoss, func(nll []float64) (float64, []float64, error) {
		l, g, s, err := f(sequenceLogLikelihoods(nll, T))
		if err != nil {
			return 0, nil, err
		}
		st = s
		// π = −Σ nll over a sequence's tokens: d loss/d nll = −d loss/d π
		// for every token of it (an unlabelled token's loss is 0 and takes
		// no gradient through the head).
		d := make([]float64, len(nll))
		for i, gi := range g {
			for t := 0; t < T; t++ {
				d[i*T+t] = -gi
			}
		}
		return l, d, nil
	})
	return loss, st, err
}

func hostRows(t *tensor.Tensor) []float64 {
	if t.DType() == tensor.F64 {
		return t.F64()
	}
	f := t.F32()
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out
}

// sequenceLogLikelihoods sums each row's token losses, negated: [rows].
func sequenceLogLikelihoods(nll []float64, T int) []float64 {
	out := make([]float64, len(nll)/T)
	for i := range out {
		for _, v := range nll[i*T : (i+1)*T] {
			out[i] -= v
		}
	}
	return out
}

// completionLengths counts each row's completion tokens: its labels the
// loss predicts (positions 1 and on; a pair's prompt is never empty, so
// that is every completion token, TRL's completion_mask.sum()).
func completionLengths(labels []int64, T int) []int {
	out := make([]int, len(labels)/T)
	for i := range out {
		for t := 1; t < T; t++ {
			if labels[i*T+t] != nn.IgnoreIndex {
				out[i]++
			}
		}
	}
	return out
}

// Pairs is train.Trainer's LossItems for DPO: the loss is a mean over a
// batch's preference pairs (its rows are the chosen completions, then as
// many rejected ones), so a step's micro-batches weigh by their pairs.
func Pairs(b train.Batch) int { return b.InputIDs.Dim(0) / 2 }

// OnTrainStart refuses workers that split each micro-batch's rows
// (grad_accum not a multiple of the workers): a pair's rows, or a KTO
// example and the mismatched rows its KL estimate reads, would fall to
// different workers.
func (o *Objective) OnTrainStart(t *train.Trainer) error {
	if size := worldSize(t.Comm); size > 1 && !t.SplitsMicroBatches() {
		return fmt.Errorf("dpo: %d workers split each micro-batch's rows (grad_accum %d is not a multiple of them), and a preference batch's rows must stay on one worker; make grad_accum a multiple of %d", size, t.Cfg.GradAccum, size)
	}
	return nil
}

// OnStepStart forgets what a step skipped by the trainer's guard left.
func (o *Objective) OnStepStart(*train.Trainer) error {
	o.micro = o.micro[:0]
	return nil
}

// OnStepEnd adds the step's DPO or KTO figures (train/rewards/margins,
// ...: Stats.Metrics), those of all its micro-batches on every worker, to
// its metrics.
func (o *Objective) OnStepEnd(t *train.Trainer, m train.Metrics) error {
	st, err := o.stepStats(t)
	o.micro = o.micro[:0]
	if err != nil {
		return err
	}
	for k, v := range st.Metrics("train/", false) {
		m[k] = v
	}
	return nil
}

// stepStats sums the step's micro-batches' figures in slot order: worker
// r ran slots [r·K/N, (r+1)·K/N) of the step's K (train's split by whole
// micro-batches), in order, and the micro-batches it did not run (no
// labelled token) are 0 there, like the other workers' slots. Worker r's
// are laid out from r·per, per the most micro-batches a worker runs in a
// step: K/N, or an epoch's batches where those are fewer (a step ends
// with its epoch), so a grad_accum far beyond the data sends no more.
func (o *Objective) stepStats(t *train.Trainer) (Stats, error) {
	size := worldSize(t.Comm)
	if size == 1 {
		return sumStats(o.micro), nil
	}
	per := max(t.Cfg.GradAccum, 1) / size
	if n := t.Train.Len(); n > 0 {
		per = min(per, n)
	}
	if len(o.micro) > per {
		return Stats{}, fmt.Errorf("dpo: %d micro-batches' figures on rank %d for a step of which it runs %d", len(o.micro), t.Comm.Rank(), per)
	}
	base := t.Comm.Rank() * per
	st, err := allStats(t.Comm, per*size, o.micro, func(j int) int { return base + j })
	if err != nil {
		return Stats{}, fmt.Errorf("dpo: all-reduce of step %d's rewards: %w", t.State.Step, err)
	}
	return st, nil
}

// worldSize is the number of workers of c (1 without one).
func worldSize(c dist.Comm) int {
	if c == nil {
		return 1
	}
	return c.Size()
}

// sumStats adds up figures in their order.
func sumStats(all []Stats) Stats {
	var sum Stats
	for _, s := range all {
		sum.Add(s)
	}
	return sum
}

// allStats is the sum, in slot order, of slots figures spread over the
// workers of c: this worker's mine[j] is slot at(j), and every slot is
// one worker's (the others' are 0). Every worker gets the same sum, one
// process's bit for bit (see the Data-parallel note above).
func allStats(c dist.Comm, slots int, mine []Stats, at func(j int) int) (Stats, error) {
	buf := make([]float64, slots*statsFloats)
	for j, s := range mine {
		s.put(buf[at(j)*statsFloats:])
	}
	if err := c.AllReduceSumF64(buf); err != nil {
		return Stats{}, err
	}
	all := make([]Stats, slots)
	for i := range all {
		all[i] = statsFrom(buf[i*statsFloats:])
	}
	return sumStats(all), nil
}

// Validation is train.Trainer's Validation for DPO or KTO: Evaluate over
// at most max batches (0: all), as val/loss (the DPO or KTO loss),
// val/rewards/chosen, val/rewards/rejected, val/rewards/margins,
// val/logps/chosen and val/logps/rejected, with DPO's
// val/rewards/accuracies or KTO's val/kl (Stats.Metrics).
func (o *Objective) Validation(max int) func(ctx context.Context, l train.Loader) (train.Metrics, error) {
	return func(ctx context.Context, l train.Loader) (train.Metrics, error) {
		st, err := o.Evaluate(ctx, l, max)
		if err != nil {
			return nil, err
		}
		return st.Metrics("val/", true), nil
	}
}

// Evaluate is the loss and rewards over a loader's batches (every
// batch when max is 0, else max of them spread over the epoch:
// train.ValBatches), on inference tapes: what the model ranks right on
// held-out pairs, or how it rewards held-out feedback.
//
// With Comm of several workers, worker r evaluates the r-th of every N
// batches evaluated, as the trainer shares supervised validation, and
// every worker returns the sums over all of them, one process's bit for
// bit. It then runs to its end whatever ctx says (the others would wait
// for its all-reduce; the trainer agrees on stopping at a step instead).
func (o *Objective) Evaluate(ctx context.Context, l train.Loader, max int) (Stats, error) {
	size, rank := worldSize(o.Comm), 0
	if size > 1 {
		rank = o.Comm.Rank()
	}
	var mine []Stats // this worker's batches', in order
	l.StartEpoch(0)
	picked := train.ValBatches(l.Len(), max)
	k := 0 // batches evaluated, by any worker
	for i := 0; max == 0 || k < max; i++ {
		if err := ctx.Err(); err != nil && size == 1 {
			return sumStats(mine), fmt.Errorf("dpo: evaluation stopped after %d batches: %w", i, err)
		}
		b, err := l.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Stats{}, err
		}
		if !picked(i) {
			if err := b.Release(); err != nil {
				return Stats{}, err
			}
			continue
		}
		if k++; (k-1)%size != rank { // another worker's batch
			if err := b.Release(); err != nil {
				return Stats{}, err
			}
			continue
		}
		st, err := o.evaluateBatch(b)
		if err != nil {
			return Stats{}, err
		}
		mine = append(mine, st)
	}
	if size == 1 || k == 0 { // k is the same on every worker: with no batch, none all-reduces
		return sumStats(mine), nil
	}
	st, err := allStats(o.Comm, k, mine, func(j int) int { return j*size + rank })
	if err != nil {
		return Stats{}, fmt.Errorf("dpo: all-reduce of the validation's sums: %w", err)
	}
	return st, nil
}

// evaluateBatch is one batch's figures, from the CPU pool inside a
// trainer (the passes give back what they allocate: see train's
// validateBatch).
func (o *Objective) evaluateBatch(b train.Batch) (Stats, error) {
	defer tensor.ServeFromCPUPool()()
	tp := autograd.NewInference()
	loss, st, err := o.loss(tp, b, 0)
	if err != nil {
		return st, err
	}
	// ReleasePass: the policy's row losses, which the loss read.
	return st, errors.Join(tp.ReleasePass(), tensor.Release(loss.Value), b.Release())
}

// AdapterAs is the reference of a run that continues an adapter (TRL with
// a PEFT model whose adapter was loaded: its frozen "ref" copy): the model
// with ref, the adapter as it was loaded, in a's place for f; a is
// attached again after f, f failing or not.
func AdapterAs(m *nn.Model, a, ref *lora.Adapter) func(f func() error) error {
	return func(f func() error) error {
		lora.Detach(m)
		err := ref.Attach(m)
		if err == nil {
			err = f()
		}
		lora.Detach(m)
		if aerr := a.Attach(m); aerr != nil && err == nil {
			err = aerr
		}
		return err
	}
}

// AdapterOff is the reference a LoRA run takes (Objective.Reference): the
// model with adapter a detached, its modules_to_save copies included, as
// PEFT's disable_adapter() gives TRL; a is attached again after f, f
// failing or not.
func AdapterOff(m *nn.Model, a *lora.Adapter) func(f func() error) error {
	return func(f func() error) error {
		lora.Detach(m)
		err := f()
		if aerr := a.Attach(m); aerr != nil && err == nil {
			err = aerr
		}
		return err
	}
}
