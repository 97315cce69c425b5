package optim

import "fmt"

// SGDConfig holds torch.optim.SGD's hyper-parameters (maximize=False).
type SGDConfig struct {
	LR          float64
	Momentum    float64
	Dampening   float64
	Nesterov    bool
	WeightDecay float64
	// NoDecay, when set, names the parameters that get no weight decay.
	NoDecay func(name string) bool
	// LRScale, when set, multiplies the learning rate of the parameter
	// name (AdamWConfig.LRScale). nil scales nothing.
	LRScale func(name string) float64
}

func (c SGDConfig) validate() error {
	switch {
	case !(c.LR >= 0):
		return fmt.Errorf("sgd: invalid learning rate %v (want >= 0)", c.LR)
	case !(c.Momentum >= 0):
		return fmt.Errorf("sgd: invalid momentum %v (want >= 0)", c.Momentum)
	case !(c.WeightDecay >= 0):
		return fmt.Errorf("sgd: invalid weight decay %v (want >= 0)", c.WeightDecay)
	case c.Nesterov && (c.Momentum <= 0 || c.Dampening != 0):
		// torch raises the same: Nesterov needs momentum and zero dampening.
		return fmt.Errorf("sgd: nesterov momentum requires momentum > 0 and dampening 0 (have %v, %v)", c.Momentum, c.Dampening)
	}
	return nil
}

// SGD is torch.optim.SGD. Weight decay is L2 (added to the gradient, not
// decoupled); the momentum buffer starts as a copy of the first gradient,
// as torch's does (dampening is not applied on that first step).
type SGD struct {
	cfg   SGDConfig
	state stateIndex
	tmp   []float32
}

// NewSGD checks cfg and returns an optimizer with empty state.
func NewSGD(cfg SGDConfig) (*SGD, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &SGD{cfg: cfg}, nil
}

// LR returns the current learning rate.
func (o *SGD) LR() float64 { return o.cfg.LR }

// SetLR sets the learning rate used by the next Step.
func (o *SGD) SetLR(lr float64) { o.cfg.LR = lr }

// Step applies one SGD update to every parameter with a gradient. Grad is
// not modified. On error nothing has been changed.
func (o *SGD) Step(params []Param) error {
	if err := checkParams(params); err != nil {
		return fmt.Errorf("sgd step: %w", err)
	}
	for _, p := range params {
		if st, ok := o.state.get(p.Name); ok && st.M != nil && len(st.M) != len(p.Data) {
			return fmt.Errorf("sgd step: %w: param %q has %d elements, its momentum buffer %d",
				ErrStateMismatch, p.Name, len(p.Data), len(st.M))
		}
	}
	c := o.cfg
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		st, ok := o.state.get(p.Name)
		if !ok {
			st = o.state.add(ParamState{Name: p.Name})
		}
		st.Step++
		wd := float32(c.WeightDecay)
		if c.NoDecay != nil && c.NoDecay(p.Name) {
			wd = 0
		}
		// d is the effective gradient: grad + wd*p, then momentum.
		if cap(o.tmp) < len(p.Grad) {
			o.tmp = make([]float32, len(p.Grad))
		}
		d := o.tmp[:len(p.Grad)]
		for i, g := range p.Grad {
			if wd != 0 {
				g = g + float32(wd*p.Data[i])
			}
			d[i] = g
		}
		if c.Momentum != 0 {
			mom := float32(c.Momentum)
			if st.M == nil {
				st.M = append([]float32(nil), d...)
			} else {
				damp := float32(1 - c.Dampening)
				for i, g := range d {
					st.M[i] = float32(st.M[i]*mom) + float32(damp*g)
				}
			}
			if c.Nesterov {
				for i := range d {
					d[i] = d[i] + float32(mom*st.M[i])
				}
			} else {
				copy(d, st.M)
			}
		}
		lr := c.LR
		if c.LRScale != nil {
			lr *= c.LRScale(p.Name)
		}
		negLR := float32(-lr)
		for i, g := range d {
			p.Data[i] = p.Data[i] + float32(negLR*g)
		}
	}
	return nil
}

// State returns a deep copy of the momentum buffers for a checkpoint.
func (o *SGD) State() State { return o.state.snapshot("sgd") }

// StateView is State without the copy (see AdamW.StateView).
func (o *SGD) StateView() State { return o.state.view("sgd") }

// LoadState replaces the state with a copy of st (from State).
func (o *SGD) LoadState(st State) error {
	if err := o.state.load("sgd", st, false); err != nil {
		return fmt.Errorf("sgd load state: %w", err)
	}
	return nil
}
