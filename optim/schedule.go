package optim

import (
	"fmt"
	"math"
	"strings"
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

// ScheduleByName builds a schedule from transformers' lr_scheduler_type
// names: "constant", "constant_with_warmup", "linear", "cosine" (0.5 cycles).
func ScheduleByName(name string, warmupSteps, totalSteps int) (Schedule, error) {
	if warmupSteps < 0 || totalSteps < 0 {
		return nil, fmt.Errorf("schedule %q: warmup %d and total %d steps must be >= 0", name, warmupSteps, totalSteps)
	}
	switch strings.ToLower(name) {
	case "constant":
		return Constant(), nil
	case "constant_with_warmup":
		return ConstantWithWarmup(warmupSteps), nil
	case "linear":
		return LinearWithWarmup(warmupSteps, totalSteps), nil
	case "cosine":
		return CosineWithWarmup(warmupSteps, totalSteps, 0.5), nil
	}
	return nil, fmt.Errorf("unknown learning-rate schedule %q (want constant, constant_with_warmup, linear or cosine)", name)
}
