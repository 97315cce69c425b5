package dpo

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ftune/ftune/autograd"
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

	step Stats // the micro-batches' since the last step ended
}

// Forward is train.ForwardFunc: the reference's log-likelihoods without a
// tape, then the policy's on tp, and the DPO loss of the two as Loss.
func (o *Objective) Forward(tp *autograd.Tape, b train.Batch, opt nn.ForwardOptions) (nn.Output, error) {
	loss, st, err := o.loss(tp, b, opt.LossChunk)
	if err != nil {
		return nn.Output{}, err
	}
	o.step.Add(st)
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

// OnStepEnd adds the step's DPO or KTO figures (train/rewards/margins,
// ...: Stats.Metrics) to its metrics and starts the next step's.
func (o *Objective) OnStepEnd(_ *train.Trainer, m train.Metrics) error {
	for k, v := range o.step.Metrics("train/", false) {
		m[k] = v
	}
	o.step = Stats{}
	return nil
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
func (o *Objective) Evaluate(ctx context.Context, l train.Loader, max int) (Stats, error) {
	var all Stats
	l.StartEpoch(0)
	picked := train.ValBatches(l.Len(), max)
	for i, k := 0, 0; max == 0 || k < max; i++ {
		if err := ctx.Err(); err != nil {
			return all, fmt.Errorf("dpo: evaluation stopped after %d batches: %w", i, err)
		}
		b, err := l.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return all, err
		}
		if !picked(i) {
			if err := b.Release(); err != nil {
				return all, err
			}
			continue
		}
		k++
		st, err := o.evaluateBatch(b)
		if err != nil {
			return all, err
		}
		all.Add(st)
	}
	return all, nil
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
