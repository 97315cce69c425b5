package train

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/optim"
)

// The loop's guards: steps to skip (non-finite loss or gradient, loss
// spikes), runs to fail (diverged, collapsed), and steps to undo (cut
// short by cancellation).

// ErrDiverged is returned when the NaN/spike guard skipped too many steps.
var ErrDiverged = errors.New("train: loss diverged")

// ErrCollapsed is returned when training can no longer change the model:
// an update left a non-finite value in a trainable tensor, or the gradient
// norm was exactly 0 for MaxDeadSteps consecutive steps (the loss then
// sits at ln(vocab): the output is uniform and nothing flows back). Both
// are what a far too high learning rate does; the run must fail rather
// than export a dead adapter.
var ErrCollapsed = errors.New("train: the run collapsed")

// guard reports a step to skip: a non-finite loss, or a spike above
// SpikeFactor × the running mean.
func (t *Trainer) guard(loss float64) bool {
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return true
	}
	return t.Cfg.SpikeFactor > 0 && t.State.LossEMA > 0 && t.State.Step > 10 && loss > t.Cfg.SpikeFactor*t.State.LossEMA
}

// nonFinite finds a NaN or infinite value in the parameters (after an
// update); ok is true when there is none.
func nonFinite(params []optim.Param) (name string, ok bool) {
	for _, p := range params {
		for _, v := range p.Data {
			if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
				return p.Name, false
			}
		}
	}
	return "", true
}

// finiteValidation refuses a validation inside Fit whose loss (overall,
// or a subject's) is NaN or Inf, before any callback sees it: a NaN ranks
// neither better nor worse, so early stopping would count it as a
// validation that did not improve and the checkpointer's top-k could keep
// or drop anything by it. The training-loss guard does not catch every
// case: the step's training loss was finite (a non-finite one skips the
// step), so the validation rows, or the weights on inputs like them, give
// what training did not. The error wraps nn.ErrNonFinite, as the
// evaluations before and after training do; the checkpoints already
// written are kept.
func (t *Trainer) finiteValidation(m Metrics) error {
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if strings.HasSuffix(k, "/loss") && (math.IsNaN(v) || math.IsInf(v, 0)) {
			bad = append(bad, fmt.Sprintf("%s is %v", k, v))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("train: validation after step %d: %s on the validation data: %w, though the step's training loss was %.4f: the weights give NaN or Inf on validation rows alone; check the validation data for rows unlike the training data, or %s",
		t.State.Step, strings.Join(bad, ", "), nn.ErrNonFinite, t.State.LastLoss, t.lowerLR())
}

// lowerLR is the advice for a diverged or collapsed run: lower the
// learning rate, unless no update was ever applied. A run that diverges
// with State.Step 0 (every step so far skipped, BadSteps counting them)
// has the weights it was loaded with, so no learning rate can have caused
// its non-finite loss or gradient: blaming it would send the user after
// the wrong setting.
func (t *Trainer) lowerLR() string {
	if t.State.Step == 0 && t.State.BadSteps > 0 {
		return "no update was ever applied, so the learning rate is not the cause: the model's forward pass gives a non-finite loss or gradient with the weights as loaded; " +
			"check the base model's weights for NaN or Inf, the data, and the settings that scale the forward pass (training.lora.alpha, training.neftune_alpha)"
	}
	return fmt.Sprintf("lower the learning rate (training.optimizer.lr, now %g)", t.Cfg.LR)
}

// lnVocab is ", ln(vocab) X" when the model is known: the loss of a
// uniform output, where a collapsed run sits.
func (t *Trainer) lnVocab() string {
	if t.Model == nil || t.Model.Config.VocabSize <= 0 {
		return ""
	}
	return fmt.Sprintf(", ln(vocab) %.4f", math.Log(float64(t.Model.Config.VocabSize)))
}

// errStepAbandoned is step's answer to a context cancelled between two
// micro-batches: the step was undone (see abandon).
var errStepAbandoned = errors.New("train: step abandoned")

// errValidationStopped is runValidation's answer to a context cancelled
// during a validation within Fit: the step before it is complete (and
// checkpointed as an interrupt's is); only its validation is missing.
var errValidationStopped = errors.New("train: validation interrupted")

// stepStart is what a step changes before its update, to undo it.
type stepStart struct {
	epoch, index, batchIndex int
	rng                      map[string][]byte
}

func (t *Trainer) markStepStart() (stepStart, error) {
	var st stepStart
	st.epoch, st.index = t.Train.Position()
	st.batchIndex = t.State.BatchIndex
	if t.RNG != nil && t.Cfg.GradAccum > 1 {
		var err error
		if st.rng, err = t.RNG.SaveRNG(); err != nil {
			return st, err
		}
	}
	return st, nil
}

// abandon undoes a step cut short by cancellation: gradients dropped,
// loader and random streams back where the step began, so that the
// checkpoint written on the way out resumes exactly as if the step had
// never started.
func (t *Trainer) abandon(st stepStart) error {
	if err := t.zeroGrad(); err != nil {
		return err
	}
	t.State.BatchIndex = st.batchIndex
	if l, ok := t.Train.(interface{ Seek(int, int) }); ok {
		l.Seek(st.epoch, st.index)
	}
	if st.rng != nil {
		if err := t.RNG.LoadRNG(st.rng); err != nil {
			return err
		}
	}
	return errStepAbandoned
}
