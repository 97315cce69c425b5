package optim

import (
	"fmt"
	"math"
)

// AdamWConfig holds AdamW's hyper-parameters; the zero values of Beta1,
// Beta2 and Eps are not defaults, use [DefaultAdamW] for torch's.
type AdamWConfig struct {
	LR          float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64
	// NoDecay, when set, names the parameters that get no weight decay
	// (e.g. [DefaultNoDecay] for biases and norms). nil decays every one,
	// which is what torch does with a single parameter group.
	NoDecay func(name string) bool
	// LRScale, when set, multiplies the learning rate of the parameter
	// name, as torch's parameter groups with their own lr do (LoRA+
	// trains lora_B at lr × ratio: LoRAPlusScale). The decoupled weight
	// decay follows the scaled rate (p *= 1 - lr·scale·wd), and a schedule
	// scales every parameter alike (LambdaLR multiplies each group's
	// initial lr by the same factor). nil scales nothing.
	LRScale func(name string) float64
}

// DefaultAdamW returns torch.optim.AdamW's defaults: lr 1e-3, betas
// (0.9, 0.999), eps 1e-8, weight_decay 1e-2.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}
}

// DecayOf is the weight decay of the parameter name: WeightDecay, or 0
// when NoDecay exempts it. A device step takes its per-parameter decays
// from here, so both paths decay the same parameters.
func (c AdamWConfig) DecayOf(name string) float64 {
	if c.NoDecay != nil && c.NoDecay(name) {
		return 0
	}
	return c.WeightDecay
}

// LRScaleOf is the factor of the learning rate of the parameter name:
// LRScale's, or 1. A device step takes its per-parameter factors from
// here, as it takes DecayOf.
func (c AdamWConfig) LRScaleOf(name string) float64 {
	if c.LRScale == nil {
		return 1
	}
	return c.LRScale(name)
}

func (c AdamWConfig) validate() error {
	// The same checks torch.optim.AdamW makes in its constructor.
	switch {
	case !(c.LR >= 0):
		return fmt.Errorf("adamw: invalid learning rate %v (want >= 0)", c.LR)
	case !(c.Eps >= 0):
		return fmt.Errorf("adamw: invalid eps %v (want >= 0)", c.Eps)
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("adamw: invalid beta1 %v (want 0 <= beta1 < 1)", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("adamw: invalid beta2 %v (want 0 <= beta2 < 1)", c.Beta2)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("adamw: invalid weight decay %v (want >= 0)", c.WeightDecay)
	}
	return nil
}

// AdamW is torch.optim.AdamW with amsgrad=False. Its per-parameter state
// (step count, first and second moments, float32) is created on a
// parameter's first step and keyed by its name.
type AdamW struct {
	cfg   AdamWConfig
	state stateIndex
}

// NewAdamW checks cfg and returns an optimizer with empty state.
func NewAdamW(cfg AdamWConfig) (*AdamW, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &AdamW{cfg: cfg}, nil
}

// LR returns the current learning rate.
func (o *AdamW) LR() float64 { return o.cfg.LR }

// SetLR sets the learning rate used by the next Step; a scheduler calls it
// with base_lr * schedule.LR(step) before each step.
func (o *AdamW) SetLR(lr float64) { o.cfg.LR = lr }

// Config returns the hyper-parameters in force.
func (o *AdamW) Config() AdamWConfig { return o.cfg }

// Step applies one AdamW update to every parameter with a gradient. The
// parameter list is checked first; on error nothing has been changed.
func (o *AdamW) Step(params []Param) error {
	if err := checkParams(params); err != nil {
		return fmt.Errorf("adamw step: %w", err)
	}
	for _, p := range params {
		if st, ok := o.state.get(p.Name); ok && len(st.M) != len(p.Data) {
			return fmt.Errorf("adamw step: %w: param %q has %d elements, its state %d",
				ErrStateMismatch, p.Name, len(p.Data), len(st.M))
		}
	}
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		st, ok := o.state.get(p.Name)
		if !ok {
			st = o.state.add(ParamState{Name: p.Name, M: make([]float32, len(p.Data)), V: make([]float32, len(p.Data))})
		}
		st.Step++
		wd := o.cfg.DecayOf(p.Name)
		adamwUpdate(p.Data, p.Grad, st.M, st.V, st.Step, o.cfg.LR*o.cfg.LRScaleOf(p.Name), o.cfg.Beta1, o.cfg.Beta2, o.cfg.Eps, wd)
	}
	return nil
}

// adamwUpdate is torch's _single_tensor_adam with decoupled weight decay,
// reproduced operation by operation: scalars are computed in float64 as
// Python does and rounded to float32 where torch passes them to a float32
// kernel; every tensor operation rounds to float32 (the explicit float32
// conversions also stop the compiler from fusing into FMA, which would
// change the rounding).
//
//	p  *= 1 - lr*wd
//	m   = lerp(m, g, 1-beta1)              (m + (1-beta1)*(g-m))
//	v   = v*beta2 + (1-beta2)*g*g
//	p  += -(lr/(1-beta1^t)) * m / (sqrt(v)/sqrt(1-beta2^t) + eps)
func adamwUpdate(p, g, m, v []float32, step int, lr, beta1, beta2, eps, wd float64) {
	bc1 := 1 - math.Pow(beta1, float64(step))
	bc2 := 1 - math.Pow(beta2, float64(step))
	negStepSize := float32(-(lr / bc1))
	bc2Sqrt := float32(math.Sqrt(bc2))
	decay := float32(1 - lr*wd)
	w1 := float32(1 - beta1)
	b2 := float32(beta2)
	w2 := float32(1 - beta2)
	e := float32(eps)
	p = p[:len(g)]
	m = m[:len(g)]
	v = v[:len(g)]
	for i, gi := range g {
		pi := p[i]
		if wd != 0 {
			pi *= decay
		}
		mi := m[i]
		// torch's lerp switches formula at weight 0.5 for accuracy.
		if w1 < 0.5 {
			mi = mi + float32(w1*float32(gi-mi))
		} else {
			mi = gi - float32(float32(gi-mi)*float32(1-w1))
		}
		vi := float32(v[i] * b2)
		vi = vi + float32(float32(w2*gi)*gi)
		denom := float32(float32(math.Sqrt(float64(vi)))/bc2Sqrt) + e
		pi = pi + float32(negStepSize*float32(mi/denom))
		m[i], v[i], p[i] = mi, vi, pi
	}
}

// State returns a deep copy of the optimizer state for a checkpoint.
func (o *AdamW) State() State { return o.state.snapshot("adamw") }

// StateView is State without the copy: the moments are the optimizer's
// own slices, valid until its next Step or LoadState, and must not be
// modified. A checkpoint written at once reads them this way rather than
// holding a second copy (twice the trainable parameters' size).
func (o *AdamW) StateView() State { return o.state.view("adamw") }

// LoadState replaces the state with a copy of st (from State). Shapes are
// checked against the parameters at the next Step.
func (o *AdamW) LoadState(st State) error {
	if err := o.state.load("adamw", st, true); err != nil {
		return fmt.Errorf("adamw load state: %w", err)
	}
	return nil
}
