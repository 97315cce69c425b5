package train

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Callback hooks into Fit. Returning an error stops training with it.
type Callback interface {
	OnTrainStart(t *Trainer) error
	OnStepEnd(t *Trainer, m Metrics) error
	OnValidationEnd(t *Trainer, m Metrics) error
	OnTrainEnd(t *Trainer) error
}

// StatefulCallback is a Callback whose state a resumed run needs to act
// as an uninterrupted one would (early stopping's count of validations
// without improvement, the Checkpointer's ranking of checkpoints): each
// checkpoint's trainer.json keeps it under StateKey, and LoadCheckpoint
// restores it. A callback that keeps anything between hooks which
// changes what it does later implements this.
type StatefulCallback interface {
	Callback
	// StateKey names the state in trainer.json, unique among the
	// trainer's callbacks.
	StateKey() string
	SaveState(t *Trainer) (json.RawMessage, error)
	// RestoreState runs after the trainer's State is restored; state is
	// nil for a checkpoint that holds none for StateKey (written before
	// the callback had state, or without it).
	RestoreState(t *Trainer, state json.RawMessage) error
}

// StepCloser is a Callback with a hook once a step is complete: after
// every callback's OnStepEnd and, when the step validates (EvalEvery, or
// the end of an epoch), after every callback's OnValidationEnd. What it
// saves then holds the step's whole state (the Checkpointer's
// checkpoints: a run resumed from one redoes nothing and skips nothing).
type StepCloser interface {
	OnStepDone(t *Trainer) error
}

// StepStarter is a Callback with a hook as each step begins, before it
// reads its micro-batches: what a callback gathers from the step's
// forwards (an objective's rewards) starts there, so that a step the guard
// skips (no OnStepEnd) leaves nothing to the next. With several workers
// every worker runs it, at the same step.
type StepStarter interface {
	OnStepStart(t *Trainer) error
}

func saveCallbackStates(t *Trainer) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	for _, c := range t.Callbacks {
		sc, ok := c.(StatefulCallback)
		if !ok {
			continue
		}
		key := sc.StateKey()
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("train: checkpoint: two callbacks keep their state under %q", key)
		}
		st, err := sc.SaveState(t)
		if err != nil {
			return nil, fmt.Errorf("train: checkpoint: callback state %q: %w", key, err)
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[key] = st
	}
	return out, nil
}

func restoreCallbackStates(t *Trainer, states map[string]json.RawMessage) error {
	for _, c := range t.Callbacks {
		if sc, ok := c.(StatefulCallback); ok {
			if err := sc.RestoreState(t, states[sc.StateKey()]); err != nil {
				return fmt.Errorf("%s: callback state %q: %w", stateFile, sc.StateKey(), err)
			}
		}
	}
	return nil
}

// Base is a Callback that does nothing; embed it and override hooks.
type Base struct{}

func (Base) OnTrainStart(*Trainer) error             { return nil }
func (Base) OnStepEnd(*Trainer, Metrics) error       { return nil }
func (Base) OnValidationEnd(*Trainer, Metrics) error { return nil }
func (Base) OnTrainEnd(*Trainer) error               { return nil }

// EarlyStopping stops when Monitor has not improved by MinDelta for
// Patience validations.
type EarlyStopping struct {
	Base
	Monitor  string // e.g. "val/loss"
	Mode     string // "min" (default) or "max"
	Patience int
	MinDelta float64
	best     float64
	bad      int
	seen     bool
}

func (e *EarlyStopping) OnValidationEnd(t *Trainer, m Metrics) error {
	v, ok := m[e.Monitor]
	if !ok {
		return fmt.Errorf("train: early stopping monitors %q, which validation does not report", e.Monitor)
	}
	if math.IsNaN(v) {
		// Neither better nor worse: counted as "did not improve", a NaN
		// would stop the run as if it had converged (Fit refuses a
		// non-finite validation loss before this; a caller's own does not).
		return fmt.Errorf("train: early stopping: %s is NaN at step %d, which ranks neither better nor worse", e.Monitor, t.State.Step)
	}
	better := !e.seen || (e.Mode != "max" && v < e.best-e.MinDelta) || (e.Mode == "max" && v > e.best+e.MinDelta)
	if better {
		e.best, e.bad, e.seen = v, 0, true
		t.State.BestMetric = v
		return nil
	}
	e.bad++
	if e.bad >= e.Patience {
		t.State.Stop, t.State.StopReason = true, fmt.Sprintf("early stopping: %s did not improve for %d validations", e.Monitor, e.Patience)
	}
	return nil
}

// earlyStoppingState is EarlyStopping's state in a checkpoint.
type earlyStoppingState struct {
	Best float64 `json:"best"`
	Bad  int     `json:"bad"`
	Seen bool    `json:"seen"`
}

func (e *EarlyStopping) StateKey() string { return "early_stopping/" + e.Monitor }

func (e *EarlyStopping) SaveState(*Trainer) (json.RawMessage, error) {
	return json.Marshal(earlyStoppingState{Best: e.best, Bad: e.bad, Seen: e.seen})
}

func (e *EarlyStopping) RestoreState(_ *Trainer, state json.RawMessage) error {
	var st earlyStoppingState
	if state != nil {
		if err := json.Unmarshal(state, &st); err != nil {
			return err
		}
	}
	e.best, e.bad, e.seen = st.Best, st.Bad, st.Seen
	return nil
}

// Sink receives every metric (run tracking, TensorBoard, progress output).
type Sink interface {
	Log(step int, m Metrics) error
}

// MetricsLogger forwards step metrics every LogEvery steps and every
// validation to its sinks; it is the learning-rate and throughput monitor
// (train/lr, train/tokens_per_s, and train/mfu when PeakFLOPS is known).
type MetricsLogger struct {
	Base
	Sinks []Sink
	// ParamCount and PeakFLOPS give model FLOP utilisation: FLOPsPerParam·N
	// FLOPs per token over the device's peak. FLOPsPerParam is 6 for full
	// fine-tuning (forward 2N, backward 4N) and 4 with a frozen base (no
	// weight gradients: forward 2N, input gradients 2N); 0 means 6.
	ParamCount    int
	PeakFLOPS     float64
	FLOPsPerParam float64

	// pending is the last step's metrics when that step is not recorded
	// yet (OnTrainEnd records it), at step pendingStep.
	pending     Metrics
	pendingStep int
}

// OnStepEnd records every LogEvery-th step's metrics, its train/loss the
// mean over the steps since the previous record (the others are the
// step's own), as transformers' Trainer logs every logging_steps: one
// step's loss is one batch's, noisier than the trend a record shows.
// The other callbacks see the step's own loss (m is not changed). The
// last step of a run is recorded too (OnTrainEnd), with the mean of the
// steps since the record before it.
func (l *MetricsLogger) OnStepEnd(t *Trainer, m Metrics) error {
	every := max(t.Cfg.LogEvery, 1)
	if t.State.Step%every != 0 {
		l.pending, l.pendingStep = maps.Clone(m), t.State.Step
		return nil
	}
	l.pending = nil
	return l.record(t, t.State.Step, m)
}

// OnTrainEnd records the run's last step when OnStepEnd did not.
func (l *MetricsLogger) OnTrainEnd(t *Trainer) error {
	if l.pending == nil || l.pendingStep != t.State.Step {
		return nil
	}
	m := l.pending
	l.pending = nil
	return l.record(t, t.State.Step, m)
}

// record emits step's metrics m, with train/loss the mean over the steps
// since the previous multiple of LogEvery.
func (l *MetricsLogger) record(t *Trainer, step int, m Metrics) error {
	every := max(t.Cfg.LogEvery, 1)
	rec := maps.Clone(m)
	if losses := t.State.Losses; len(losses) > 0 {
		n := step % every
		if n == 0 {
			n = every
		}
		window := losses[max(len(losses)-n, 0):]
		sum := 0.0
		for _, v := range window {
			sum += v
		}
		rec["train/loss"] = sum / float64(len(window))
	}
	if l.PeakFLOPS > 0 && l.ParamCount > 0 {
		f := l.FLOPsPerParam
		if f == 0 {
			f = 6
		}
		rec["train/mfu"] = f * float64(l.ParamCount) * rec["train/tokens_per_s"] / l.PeakFLOPS
	}
	return l.emit(step, rec)
}

func (l *MetricsLogger) OnValidationEnd(t *Trainer, m Metrics) error { return l.emit(t.State.Step, m) }

func (l *MetricsLogger) emit(step int, m Metrics) error {
	for _, s := range l.Sinks {
		if err := s.Log(step, m); err != nil {
			return err
		}
	}
	return nil
}

// LineSink prints one line per record (for logs and non-terminals) to W;
// the zero value prints to standard output. Loss names a preference
// objective's validation loss (DescribeValidation).
type LineSink struct {
	W    io.Writer
	Loss string
}

func (s LineSink) Log(step int, m Metrics) error {
	w := s.W
	if w == nil {
		w = os.Stdout
	}
	if _, ok := m["val/loss"]; ok {
		_, err := fmt.Fprintf(w, "step %5d  val %s\n", step, DescribeValidation(m, s.Loss))
		return err
	}
	pref := ""
	if acc, ok := m["train/rewards/accuracies"]; ok {
		pref = fmt.Sprintf("  reward acc %.2f margin %.3f", acc, m["train/rewards/margins"])
	} else {
		pref = UnpairedRewards(m, "train/", 3)
	}
	_, err := fmt.Fprintf(w, "step %5d  loss %.4f%s  lr %.3g  grad norm %.3f  %.0f tok/s\n", step, m["train/loss"], pref, m["train/lr"], m["train/grad_norm"], m["train/tokens_per_s"])
	return err
}

// DescribeValidation is a validation's figures for a log line: loss,
// perplexity and token accuracy, or, for a preference objective, the loss
// named loss ("DPO loss", "KTO loss", "DPO (ipo) loss": the run knows
// which; "loss" when empty) and the rewards: DPO's (its metrics have
// val/rewards/accuracies) the reward accuracy and the margin, KTO's
// (rewards without an accuracy: no pairs) UnpairedRewards.
func DescribeValidation(m Metrics, loss string) string {
	if loss == "" {
		loss = "loss"
	}
	if acc, ok := m["val/rewards/accuracies"]; ok {
		return fmt.Sprintf("%s %.4f  reward acc %.3f  margin %.4f", loss, m["val/loss"], acc, m["val/rewards/margins"])
	}
	if r := UnpairedRewards(m, "val/", 4); r != "" {
		return fmt.Sprintf("%s %.4f%s", loss, m["val/loss"], r)
	}
	return fmt.Sprintf("loss %.4f  ppl %.2f  token acc %.3f", m["val/loss"], m["val/perplexity"], m["val/token_accuracy"])
}

// UnpairedRewards are KTO's figures under prefix for a log line, with
// digits decimals: the desirable and undesirable examples' mean rewards,
// their margin and the KL estimate, those the metrics have (a batch may
// hold one kind only); "" when they have no reward.
func UnpairedRewards(m Metrics, prefix string, digits int) string {
	_, chosen := m[prefix+"rewards/chosen"]
	_, rejected := m[prefix+"rewards/rejected"]
	if !chosen && !rejected {
		return ""
	}
	var b strings.Builder
	for _, f := range []struct{ name, key string }{
		{"reward chosen", "rewards/chosen"}, {"rejected", "rewards/rejected"}, {"margin", "rewards/margins"}, {"kl", "kl"},
	} {
		if v, ok := m[prefix+f.key]; ok {
			fmt.Fprintf(&b, " %s %.*f", f.name, digits, v)
		}
	}
	return " " + b.String()
}

// Timer stops training after a wall-clock budget (MaxTime in Config does
// the same from the loop; this form composes with other callbacks).
type Timer struct {
	Base
	Limit time.Duration
	start time.Time
}

func (c *Timer) OnTrainStart(*Trainer) error { c.start = time.Now(); return nil }
func (c *Timer) OnStepEnd(t *Trainer, _ Metrics) error {
	if c.Limit > 0 && time.Since(c.start) > c.Limit {
		t.State.Stop, t.State.StopReason = true, "timer"
	}
	return nil
}

// Checkpointer writes checkpoints every N steps, at the end and when
// training stops early (interrupt, timer), keeping the last KeepLast and
// the TopK best by Monitor. A step's checkpoint is written once the step
// is complete (OnStepDone), after its validation: it holds what the
// validation changed (the ranking, early stopping's count) and its
// metrics, so a run resumed from it validates nothing twice and skips no
// validation. The ranking is kept in each checkpoint (StatefulCallback).
type Checkpointer struct {
	Base
	Dir      string
	Every    int
	KeepLast int
	Monitor  string // "" = no best-k tracking
	Mode     string // "min" (default) or "max"
	TopK     int
	Extra    func(dir string) error // writes more files (e.g. the PEFT adapter) into each checkpoint
	best     []scored
	lastSave int
	due      bool // the running step is to be saved once complete
}

type scored struct {
	Step  int     `json:"step"`
	Value float64 `json:"value"` // negated for Mode "max": smaller is better
}

func (c *Checkpointer) OnStepEnd(t *Trainer, _ Metrics) error {
	if c.Every > 0 && t.State.Step%c.Every == 0 {
		c.due = true
	}
	return nil
}

func (c *Checkpointer) OnValidationEnd(t *Trainer, m Metrics) error {
	if c.Monitor == "" {
		return nil
	}
	v, ok := m[c.Monitor]
	if !ok || math.IsNaN(v) {
		return nil
	}
	if c.Mode == "max" {
		v = -v
	}
	c.best = append(c.best, scored{t.State.Step, v})
	c.due = true // a ranked step has its checkpoint
	return nil
}

func (c *Checkpointer) OnStepDone(t *Trainer) error {
	if !c.due {
		return nil
	}
	c.due = false
	return c.save(t)
}

func (c *Checkpointer) OnTrainEnd(t *Trainer) error {
	if t.State.Step == 0 || c.lastSave == t.State.Step && dirExists(filepath.Join(c.Dir, StepDir(t.State.Step))) {
		return nil // no step to save; a resumed run that took none; a step saved when done
	}
	return c.save(t)
}

func (c *Checkpointer) save(t *Trainer) error {
	if _, err := SaveCheckpoint(c.Dir, t, c.Extra); err != nil {
		return err
	}
	c.lastSave = t.State.Step
	return Prune(c.Dir, c.KeepLast, c.keep())
}

type checkpointerState struct {
	Best []scored `json:"best"`
}

func (c *Checkpointer) StateKey() string { return "checkpointer" }

func (c *Checkpointer) SaveState(*Trainer) (json.RawMessage, error) {
	return json.Marshal(checkpointerState{Best: c.best})
}

// RestoreState takes the ranking, and the checkpoint's step as the last
// saved (OnTrainEnd does not write it again). A checkpoint written with
// its step's validation pending (interrupted) is written again once Fit
// has redone the validation.
func (c *Checkpointer) RestoreState(t *Trainer, state json.RawMessage) error {
	var st checkpointerState
	if state != nil {
		if err := json.Unmarshal(state, &st); err != nil {
			return err
		}
	}
	c.best, c.lastSave, c.due = st.Best, t.State.Step, t.State.ValidationPending
	return nil
}

// keep returns the steps to keep as top-k.
func (c *Checkpointer) keep() map[int]bool {
	out := map[int]bool{}
	if c.TopK <= 0 {
		return out
	}
	b := append([]scored(nil), c.best...)
	for i := 0; i < len(b) && i < c.TopK; i++ {
		m := i
		for j := i + 1; j < len(b); j++ {
			if b[j].Value < b[m].Value {
				m = j
			}
		}
		b[i], b[m] = b[m], b[i]
		out[b[i].Step] = true
	}
	return out
}
