package train

import (
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// Callback hooks into Fit. Returning an error stops training with it.
type Callback interface {
	OnTrainStart(t *Trainer) error
	OnStepEnd(t *Trainer, m Metrics) error
	OnValidationEnd(t *Trainer, m Metrics) error
	OnTrainEnd(t *Trainer) error
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
		return nil
	}
	e.bad++
	if e.bad >= e.Patience {
		t.State.Stop, t.State.StopReason = true, fmt.Sprintf("early stopping: %s did not improve for %d validations", e.Monitor, e.Patience)
	}
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
}

func (l *MetricsLogger) OnStepEnd(t *Trainer, m Metrics) error {
	if t.State.Step%max(t.Cfg.LogEvery, 1) != 0 {
		return nil
	}
	if l.PeakFLOPS > 0 && l.ParamCount > 0 {
		f := l.FLOPsPerParam
		if f == 0 {
			f = 6
		}
		m["train/mfu"] = f * float64(l.ParamCount) * m["train/tokens_per_s"] / l.PeakFLOPS
	}
	return l.emit(t.State.Step, m)
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
// the zero value prints to standard output.
type LineSink struct{ W io.Writer }

func (s LineSink) Log(step int, m Metrics) error {
	w := s.W
	if w == nil {
		w = os.Stdout
	}
	if _, ok := m["val/loss"]; ok {
		_, err := fmt.Fprintf(w, "step %5d  val %s\n", step, DescribeValidation(m))
		return err
	}
	pref := ""
	if acc, ok := m["train/rewards/accuracies"]; ok {
		pref = fmt.Sprintf("  reward acc %.2f margin %.3f", acc, m["train/rewards/margins"])
	}
	_, err := fmt.Fprintf(w, "step %5d  loss %.4f%s  lr %.3g  grad norm %.3f  %.0f tok/s\n", step, m["train/loss"], pref, m["train/lr"], m["train/grad_norm"], m["train/tokens_per_s"])
	return err
}

// DescribeValidation is a validation's figures for a log line: loss,
// perplexity and token accuracy, or, for a preference objective (its
// metrics have val/rewards/accuracies), the DPO loss, the reward accuracy
// and the margin.
func DescribeValidation(m Metrics) string {
	if acc, ok := m["val/rewards/accuracies"]; ok {
		return fmt.Sprintf("DPO loss %.4f  reward acc %.3f  margin %.4f", m["val/loss"], acc, m["val/rewards/margins"])
	}
	return fmt.Sprintf("loss %.4f  ppl %.2f  token acc %.3f", m["val/loss"], m["val/perplexity"], m["val/token_accuracy"])
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
// the TopK best by Monitor.
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
}

type scored struct {
	step  int
	value float64
}

func (c *Checkpointer) OnStepEnd(t *Trainer, _ Metrics) error {
	if c.Every > 0 && t.State.Step%c.Every == 0 {
		return c.save(t)
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
	if c.lastSave != t.State.Step {
		if err := c.save(t); err != nil {
			return err
		}
	}
	return nil
}

func (c *Checkpointer) OnTrainEnd(t *Trainer) error {
	if c.lastSave == t.State.Step {
		return nil
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
			if b[j].value < b[m].value {
				m = j
			}
		}
		b[i], b[m] = b[m], b[i]
		out[b[i].step] = true
	}
	return out
}
