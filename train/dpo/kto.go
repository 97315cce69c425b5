package dpo

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/train"
)

// This file is KTO (Kahneman-Tversky Optimization, Ethayarajh et al.,
// 2024) on unpaired feedback, as TRL's KTOTrainer computes it
// (huggingface/trl f2cd577, trl/trainer/kto_trainer.py, _compute_loss
// and _prepare_dataset): each example is a prompt with one completion
// labelled desirable or not. With d = π − ref a completion's log-ratio
// (sequence log-likelihoods summed over its tokens, the policy's and the
// reference's) and z the batch's KL estimate, a desirable example's loss
// is 1 − σ(β(d − z)) and an undesirable one's 1 − σ(β(z − d)), weighted
// by desirable_weight and undesirable_weight; the loss is their mean over
// the batch's examples.
//
// z comes from mismatched pairs: example i's prompt with the completion
// of example i−1 of the same batch (the first takes the last's), TRL's
// rotation of the completions by one. z = max(0, mean over the batch of
// π(mismatched) − ref(mismatched)), computed without gradients (TRL's
// torch.no_grad and detach): the loss's gradient flows through d alone.
// Where ftune differs: TRL rotates within the fixed batches of an
// unshuffled pass over the data (it requires sequential sampling, since
// its rotation is made once when the data is prepared); ftune shuffles
// each epoch, as for every objective, and rotates within each batch as
// it is drawn (as TRL's vision collator does), so a batch's mismatched
// completions are still its own completions. The mismatched forward runs
// without dropout (TRL disables dropout by default).
//
// Loss type apo_zero_unpaired (APO-zero, D'Oosterlinck et al., 2024,
// unpaired) needs no KL: 1 − σ(βd) for a desirable example and σ(βd) for
// an undesirable one.

// KTO's loss types (TRL's KTOConfig.loss_type).
const (
	KTOLossKTO             = "kto"
	KTOLossAPOZeroUnpaired = "apo_zero_unpaired"
)

// KTOLossTypes are the loss types KTOSpec takes.
var KTOLossTypes = []string{KTOLossKTO, KTOLossAPOZeroUnpaired}

// The names an unpaired batch gives its rows (train.Batch.Subjects): an
// example's row is desirable or undesirable, a KL row mismatched.
const (
	RowDesirable   = "desirable"
	RowUndesirable = "undesirable"
	RowMismatched  = "mismatched"
)

// KTOSpec is KTO's loss: β (TRL's default 0.1), the weights of the
// desirable and the undesirable examples' losses (1 each) and the loss
// type ("": kto).
type KTOSpec struct {
	Beta                               float64
	DesirableWeight, UndesirableWeight float64
	LossType                           string
}

// Check refuses what the loss cannot compute, each with the reason.
func (s KTOSpec) Check() error {
	switch {
	case !(s.Beta > 0) || math.IsInf(s.Beta, 0):
		return fmt.Errorf("kto: beta must be > 0 and finite, got %g", s.Beta)
	case !(s.DesirableWeight >= 0) || math.IsInf(s.DesirableWeight, 0) || !(s.UndesirableWeight >= 0) || math.IsInf(s.UndesirableWeight, 0):
		return fmt.Errorf("kto: desirable_weight %g and undesirable_weight %g must be >= 0 and finite", s.DesirableWeight, s.UndesirableWeight)
	case s.DesirableWeight == 0 && s.UndesirableWeight == 0:
		return fmt.Errorf("kto: desirable_weight and undesirable_weight are both 0: the loss would be 0 whatever the model does")
	case !slices.Contains(KTOLossTypes, s.lossType()):
		return fmt.Errorf("kto: loss type %q (want %s)", s.LossType, strings.Join(KTOLossTypes, " or "))
	}
	return nil
}

func (s KTOSpec) lossType() string {
	if s.LossType == "" {
		return KTOLossKTO
	}
	return s.LossType
}

// NeedsKL says whether the loss reads the batch's KL estimate (kto does,
// apo_zero_unpaired does not): its batches then hold mismatched rows, and
// a batch needs two examples for one to be mismatched with another.
func (s KTOSpec) NeedsKL() bool { return s.lossType() == KTOLossKTO }

// String describes the loss for the log: "kto loss, beta 0.1", with the
// weights when they are not 1.
func (s KTOSpec) String() string {
	out := fmt.Sprintf("%s loss, beta %g", s.lossType(), s.Beta)
	if s.DesirableWeight != 1 || s.UndesirableWeight != 1 {
		out += fmt.Sprintf(", desirable weight %g, undesirable weight %g", s.DesirableWeight, s.UndesirableWeight)
	}
	return out
}

// KTOLoss is the KTO loss of a batch of B examples from the policy's and
// the reference's sequence log-likelihoods, each example's label
// (desirable or not) and, for loss type kto, the log-likelihoods of the
// batch's B mismatched rows (policyKL, refKL; nil otherwise). It returns
// the loss, its gradient with respect to each example's policy
// log-likelihood (none flows to the mismatched rows: the KL estimate is a
// constant of the loss, as TRL detaches it) and the batch's Stats (the
// rewards are β·(π − ref), as TRL logs them). A non-finite log-likelihood
// gives a non-finite loss with a zero gradient, as Loss does, for the
// trainer's guard to skip the step (TRL's nanmean would drop the example
// instead).
func KTOLoss(spec KTOSpec, policy, ref []float64, desirable []bool, policyKL, refKL []float64) (loss float64, grad []float64, st Stats, err error) {
	B := len(policy)
	if B == 0 || len(ref) != B || len(desirable) != B {
		return 0, nil, st, fmt.Errorf("kto: %d policy and %d reference log-likelihoods for %d labels (want the same non-zero number)", B, len(ref), len(desirable))
	}
	if err := spec.Check(); err != nil {
		return 0, nil, st, err
	}
	z := 0.0
	if spec.NeedsKL() {
		if len(policyKL) != B || len(refKL) != B {
			return 0, nil, st, fmt.Errorf("kto: %d and %d mismatched log-likelihoods for %d examples (want one each)", len(policyKL), len(refKL), B)
		}
		for i := range B {
			z += (policyKL[i] - refKL[i]) / float64(B)
		}
		z = math.Max(z, 0) // TRL's clamp(min=0)
		st.KL, st.KLBatches = z, 1
	}
	beta := spec.Beta
	grad = make([]float64, B)
	for i := range B {
		d := policy[i] - ref[i]
		// u: the loss is σ(−u) for a desirable example and σ(u) for an
		// undesirable one, 1 − σ(β(d − z)) and 1 − σ(β(z − d)) written
		// with 1 − σ(x) = σ(−x); dσ(x)/dx = σ(x)σ(−x).
		u := beta * (d - z)
		w, sign := spec.DesirableWeight, -1.0
		if !desirable[i] {
			w, sign = spec.UndesirableWeight, 1.0
		}
		l := sigmoid(sign * u)
		grad[i] = w * sign * beta * sigmoid(u) * sigmoid(-u) / float64(B)
		loss += w * l / float64(B)
		st.Loss += w * l
		if desirable[i] {
			st.Chosen++
			st.RewardChosen += beta * d
			st.LogPChosen += policy[i]
		} else {
			st.Rejected++
			st.RewardRejected += beta * d
			st.LogPRejected += policy[i]
		}
	}
	st.Examples = B
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		clear(grad)
	}
	return loss, grad, st, nil
}

// Examples is train.Trainer's LossItems for KTO: the loss is a mean over
// a batch's examples (its rows less the mismatched ones), so a step's
// micro-batches weigh by their examples.
func Examples(b train.Batch) int {
	n := 0
	for _, s := range b.Subjects {
		if s != RowMismatched {
			n++
		}
	}
	return n
}

// ktoLoss is KTO's loss of an UnpairedLoader batch: the reference's
// log-likelihoods of its examples and of its mismatched rows, the
// policy's of the mismatched rows, all without a tape, then the policy's
// forward of the examples on tp and the loss of them all.
//
// The examples' rows of a batch with mismatched rows are a copy of them
// (train.Shard) that the backward still reads: it is left to the
// collector, as the trainer leaves its data-parallel shards; the
// mismatched rows' is given back once their forwards have run.
func (o *Objective) ktoLoss(tp *autograd.Tape, b train.Batch, chunk int) (*autograd.Var, Stats, error) {
	spec := *o.KTO
	if err := spec.Check(); err != nil {
		return nil, Stats{}, err
	}
	examples, mismatched, desirable, err := o.splitUnpaired(b, spec.NeedsKL())
	if err != nil {
		return nil, Stats{}, err
	}
	fo := nn.ForwardOptions{RowLosses: true, LossChunk: chunk}
	var ref, policyKL, refKL []float64
	err = o.Reference(func() (err error) {
		if ref, err = o.logLikelihoods(examples.Batch, fo); err != nil || !spec.NeedsKL() {
			return err
		}
		refKL, err = o.logLikelihoods(mismatched.Batch, fo)
		return err
	})
	if err != nil {
		return nil, Stats{}, errors.Join(fmt.Errorf("kto: the reference's forward: %w", err), mismatched.Release())
	}
	if spec.NeedsKL() {
		// The policy's, without a tape: the KL estimate takes no gradient.
		policyKL, err = o.logLikelihoods(mismatched.Batch, fo)
		if err = errors.Join(err, mismatched.Release()); err != nil {
			return nil, Stats{}, fmt.Errorf("kto: the mismatched rows' forward: %w", err)
		}
	}
	return o.policyLoss(tp, examples, fo, func(policy []float64) (float64, []float64, Stats, error) {
		return KTOLoss(spec, policy, ref, desirable, policyKL, refKL)
	})
}

// splitUnpaired cuts an UnpairedLoader batch into its examples' rows and,
// with kl, its mismatched rows (train.Shard), and reads each example's
// label from its row's name.
func (o *Objective) splitUnpaired(b train.Batch, kl bool) (examples, mismatched train.Batch, desirable []bool, err error) {
	rows := b.InputIDs.Dim(0)
	B := rows
	if kl {
		B = rows / 2
	}
	if len(b.Subjects) != rows || B == 0 || kl && rows%2 != 0 || slices.ContainsFunc(b.Subjects[B:], func(s string) bool { return s != RowMismatched }) {
		return examples, mismatched, nil, fmt.Errorf("kto: a batch of %d rows named %q is not unpaired examples followed by as many mismatched rows (UnpairedLoader's, with KL %v)", rows, b.Subjects, kl)
	}
	desirable = make([]bool, B)
	for i, s := range b.Subjects[:B] {
		switch s {
		case RowDesirable:
			desirable[i] = true
		case RowUndesirable:
		default:
			return examples, mismatched, nil, fmt.Errorf("kto: row %d of the batch is %q, not an example's (%s or %s)", i, s, RowDesirable, RowUndesirable)
		}
	}
	if !kl {
		return b, train.Batch{}, desirable, nil
	}
	be := o.Model.Backend
	return train.Shard(b, 0, B, be), train.Shard(b, B, rows, be), desirable, nil
}
