package optim

import (
	"fmt"
	"math"
	"strings"

	"github.com/ftune/ftune/internal/pymath"
)

// Schedule gives the learning-rate multiplier for an optimizer step: the
// learning rate of step k (0-based: k steps already taken) is
// base_lr * LR(k), as torch's LambdaLR computes it with last_epoch = k.
type Schedule interface {
	LR(step int) float64
}

// ScheduleFunc adapts a function to Schedule.
type ScheduleFunc func(step int) float64

// LR calls f.
func (f ScheduleFunc) LR(step int) float64 { return f(step) }

// warmup is transformers' linear warmup ramp: step/max(1, warmup).
func warmup(step, warmupSteps int) float64 {
	return float64(step) / float64(max(1, warmupSteps))
}

// Constant is get_constant_schedule: always 1.
func Constant() Schedule { return ScheduleFunc(func(int) float64 { return 1 }) }

// ConstantWithWarmup is get_constant_schedule_with_warmup: a linear ramp
// from 0 over warmupSteps steps, then 1.
func ConstantWithWarmup(warmupSteps int) Schedule {
	return ScheduleFunc(func(step int) float64 {
		if step < warmupSteps {
			return warmup(step, warmupSteps)
		}
		return 1
	})
}

// LinearWithWarmup is get_linear_schedule_with_warmup: the warmup ramp,
// then a linear decay to 0 at totalSteps (and 0 after).
func LinearWithWarmup(warmupSteps, totalSteps int) Schedule {
	return ScheduleFunc(func(step int) float64 {
		if step < warmupSteps {
			return warmup(step, warmupSteps)
		}
		return math.Max(0, float64(totalSteps-step)/float64(max(1, totalSteps-warmupSteps)))
	})
}

// CosineWithWarmup is get_cosine_schedule_with_warmup: the warmup ramp,
// then 0.5*(1+cos(pi*2*numCycles*progress)) floored at 0, with progress going
// from 0 to 1 over the remaining steps. numCycles 0.5 (transformers' default)
// is a half cosine from 1 down to 0.
func CosineWithWarmup(warmupSteps, totalSteps int, numCycles float64) Schedule {
	return ScheduleFunc(func(step int) float64 {
		if step < warmupSteps {
			return warmup(step, warmupSteps)
		}
		progress := float64(step-warmupSteps) / float64(max(1, totalSteps-warmupSteps))
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*numCycles*2*progress)))
	})
}

// CosineWithMinLR is get_cosine_with_min_lr_schedule_with_warmup with
// min_lr_rate: the warmup ramp, then the cosine factor f of
// CosineWithWarmup lifted to f·(1-minLRRate)+minLRRate, so that the rate
// decays to lr·minLRRate instead of 0.
func CosineWithMinLR(warmupSteps, totalSteps int, numCycles, minLRRate float64) Schedule {
	return ScheduleFunc(func(step int) float64 {
		if step < warmupSteps {
			return warmup(step, warmupSteps)
		}
		progress := float64(step-warmupSteps) / float64(max(1, totalSteps-warmupSteps))
		f := 0.5 * (1 + math.Cos(math.Pi*numCycles*2*progress))
		return math.Max(0, f*(1-minLRRate)+minLRRate)
	})
}

// CosineWithHardRestarts is
// get_cosine_with_hard_restarts_schedule_with_warmup: the warmup ramp, then
// numCycles half cosines from 1 to 0, each starting again at 1 (a hard
// restart), over the remaining steps; 0 from totalSteps on.
func CosineWithHardRestarts(warmupSteps, totalSteps, numCycles int) Schedule {
	return ScheduleFunc(func(step int) float64 {
		if step < warmupSteps {
			return warmup(step, warmupSteps)
		}
		progress := float64(step-warmupSteps) / float64(max(1, totalSteps-warmupSteps))
		if progress >= 1 {
			return 0
		}
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*math.Mod(float64(numCycles)*progress, 1))))
	})
}

// PolynomialDecay is get_polynomial_decay_schedule_with_warmup: the warmup
// ramp, then the rate (lr-lrEnd)·(1-progress)^power + lrEnd, reaching lrEnd
// at totalSteps and staying there. transformers computes it from the
// optimizer's lr (its defaults["lr"]), so the multiplier depends on lr:
// it is that rate divided by lr.
func PolynomialDecay(warmupSteps, totalSteps int, lr, lrEnd, power float64) Schedule {
	return ScheduleFunc(func(step int) float64 {
		switch {
		case step < warmupSteps:
			return warmup(step, warmupSteps)
		case step > totalSteps:
			return lrEnd / lr
		}
		remaining := 1 - float64(step-warmupSteps)/float64(max(1, totalSteps-warmupSteps))
		return ((lr-lrEnd)*math.Pow(remaining, power) + lrEnd) / lr
	})
}

// WSD decay shapes (get_wsd_schedule's decay_type).
const (
	DecayLinear = "linear"
	DecayCosine = "cosine"
	Decay1Sqrt  = "1-sqrt"
)

// WarmupStableDecay is get_wsd_schedule with warmup_type linear and
// num_cycles 0.5: a linear warmup from minLRRatio to 1 over warmupSteps
// (this schedule's warmup starts at the floor, not at 0), 1 for
// stableSteps, a decay from 1 to minLRRatio over decaySteps shaped by
// decayType (linear 1-p, cosine 0.5·(1+cos(πp)), 1-sqrt 1-√p, each lifted
// to f·(1-minLRRatio)+minLRRatio), then minLRRatio.
func WarmupStableDecay(warmupSteps, stableSteps, decaySteps int, decayType string, minLRRatio float64) Schedule {
	return ScheduleFunc(func(step int) float64 {
		lift := func(f float64) float64 { return math.Max(0, f*(1-minLRRatio)+minLRRatio) }
		switch {
		case step < warmupSteps:
			return lift(warmup(step, warmupSteps))
		case step < warmupSteps+stableSteps:
			return 1
		case step < warmupSteps+stableSteps+decaySteps:
			p := float64(step-warmupSteps-stableSteps) / float64(max(1, decaySteps))
			switch decayType {
			case DecayLinear:
				return lift(1 - p)
			case Decay1Sqrt:
				return lift(1 - math.Sqrt(p))
			}
			return lift(0.5 * (1 + math.Cos(math.Pi*0.5*2*p)))
		}
		return minLRRatio
	})
}

// ScheduleSpec is a schedule by transformers' lr_scheduler_type name with
// the settings it takes (get_scheduler's num_warmup_steps,
// num_training_steps and the lr_scheduler_kwargs ftune supports). Only the
// named schedule's own fields are read.
type ScheduleSpec struct {
	Name        string
	WarmupSteps int
	TotalSteps  int
	// NumCycles is cosine_with_restarts' num_cycles (hard restarts), ≥ 1.
	NumCycles int
	// MinLRRate is cosine_with_min_lr's min_lr_rate and
	// warmup_stable_decay's min_lr_ratio: the rate's floor as a fraction
	// of the peak, in [0, 1).
	MinLRRate float64
	// LR, LREnd and Power are polynomial's lr_init (the optimizer's peak
	// learning rate), lr_end (below LR) and power (> 0).
	LR, LREnd, Power float64
	// DecaySteps and DecayType are warmup_stable_decay's num_decay_steps
	// and decay_type (linear, cosine or 1-sqrt); its stable phase is what
	// the warmup and the decay leave of TotalSteps.
	DecaySteps int
	DecayType  string
}

// ScheduleNames are the names ScheduleSpec builds.
var ScheduleNames = []string{"constant", "constant_with_warmup", "linear", "cosine", "cosine_with_min_lr", "cosine_with_restarts", "polynomial", "warmup_stable_decay"}

// Build checks the settings the named schedule reads and returns it.
func (s ScheduleSpec) Build() (Schedule, error) {
	w, total := s.WarmupSteps, s.TotalSteps
	if w < 0 || total < 0 {
		return nil, fmt.Errorf("schedule %q: warmup %d and total %d steps must be >= 0", s.Name, w, total)
	}
	bad := func(format string, a ...any) (Schedule, error) {
		return nil, fmt.Errorf("schedule %s: "+format, append([]any{s.Name}, a...)...)
	}
	switch strings.ToLower(s.Name) {
	case "constant":
		return Constant(), nil
	case "constant_with_warmup":
		return ConstantWithWarmup(w), nil
	case "linear":
		return LinearWithWarmup(w, total), nil
	case "cosine":
		return CosineWithWarmup(w, total, 0.5), nil
	case "cosine_with_min_lr":
		if !(s.MinLRRate >= 0 && s.MinLRRate < 1) {
			return bad("min_lr_rate %v: want [0, 1)", s.MinLRRate)
		}
		return CosineWithMinLR(w, total, 0.5, s.MinLRRate), nil
	case "cosine_with_restarts":
		if s.NumCycles < 1 {
			return bad("num_cycles %d: want >= 1", s.NumCycles)
		}
		return CosineWithHardRestarts(w, total, s.NumCycles), nil
	case "polynomial":
		// transformers refuses lr_end >= lr the same way.
		if !(s.LREnd >= 0 && s.LREnd < s.LR) || !(s.Power > 0) || math.IsInf(s.Power, 0) {
			return bad("lr_end %v must be in [0, lr %v) and power %v > 0", s.LREnd, s.LR, s.Power)
		}
		return PolynomialDecay(w, total, s.LR, s.LREnd, s.Power), nil
	case "warmup_stable_decay":
		if !(s.MinLRRate >= 0 && s.MinLRRate < 1) {
			return bad("min_lr_ratio %v: want [0, 1)", s.MinLRRate)
		}
		if s.DecayType != DecayLinear && s.DecayType != DecayCosine && s.DecayType != Decay1Sqrt {
			return bad("decay_type %q: want linear, cosine or 1-sqrt", s.DecayType)
		}
		if s.DecaySteps < 0 || w+s.DecaySteps > total {
			return bad("%d warmup and %d decay steps do not fit in %d steps", w, s.DecaySteps, total)
		}
		return WarmupStableDecay(w, total-w-s.DecaySteps, s.DecaySteps, s.DecayType, s.MinLRRate), nil
	}
	return nil, fmt.Errorf("unknown learning-rate schedule %q (want %s)", s.Name, strings.Join(ScheduleNames, ", "))
}

// StepsOfRatio is a fraction of a run's steps as transformers rounds
// warmup_ratio (get_warmup_steps): ceil(ratio × totalSteps) of the float
// product Python computes, so 0.07 of 100 steps is 8 (7.000000000000001
// rounded up), as transformers warms up, not 7 (pymath.CeilFraction,
// which config uses too).
func StepsOfRatio(ratio float64, totalSteps int) int {
	return pymath.CeilFraction(ratio, totalSteps)
}
