package optim

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Param is one trainable parameter seen as slices: Data is updated in place
// by Step, Grad is read (and scaled in place by ClipGradNorm). A nil Grad
// means the parameter received no gradient this step and is skipped, as
// torch skips parameters whose .grad is None.
type Param struct {
	Name string
	Data []float32
	Grad []float32
}

// ParamState is the optimizer state of one parameter, as saved in a
// checkpoint. AdamW fills M (first moment), V (second moment) and Step;
// SGD fills M (momentum buffer; nil until the first step with momentum).
type ParamState struct {
	Name string
	Step int
	M    []float32
	V    []float32
}

// State is the whole optimizer state. Kind names the optimizer ("adamw",
// "sgd") so that loading one optimizer's state into another is an error.
type State struct {
	Kind   string
	Params []ParamState
}

// ErrStateMismatch is returned (wrapped) when a parameter does not fit the
// state an optimizer holds for its name, or a loaded state does not fit.
var ErrStateMismatch = errors.New("optimizer state mismatch")

// checkParams validates one Step's parameter list: unique non-empty names and
// gradients as long as the data. It runs before anything is updated, so a bad
// list leaves every parameter and the state untouched.
func checkParams(params []Param) error {
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		if p.Name == "" {
			return fmt.Errorf("param %d has no name (names key the optimizer state)", i)
		}
		if seen[p.Name] {
			return fmt.Errorf("param %q appears twice", p.Name)
		}
		seen[p.Name] = true
		if p.Grad != nil && len(p.Grad) != len(p.Data) {
			return fmt.Errorf("param %q: grad has %d elements, data %d", p.Name, len(p.Grad), len(p.Data))
		}
	}
	return nil
}

// noDecayPatterns are the name patterns transformers' Trainer keeps out of
// weight decay (get_decay_parameter_names: "bias", "layernorm", "rmsnorm",
// "(?:^|\.)norm(?:$|\.)", "_norm(?:$|\.)", matched against the lower-cased
// parameter name).
var noDecayPatterns = regexp.MustCompile(`bias|layernorm|rmsnorm|(?:^|\.)norm(?:$|\.)|_norm(?:$|\.)`)

// DefaultNoDecay reports whether a parameter should be excluded from weight
// decay because it is a bias or a normalisation weight, judged by name the
// way transformers' Trainer does (e.g. "model.norm.weight",
// "model.layers.0.input_layernorm.weight", "lm_head.bias").
func DefaultNoDecay(name string) bool {
	return noDecayPatterns.MatchString(strings.ToLower(name))
}

// stateIndex finds the state slot for a name, creating it with n-element
// moment slices when create is true.
type stateIndex struct {
	byName map[string]int
	params []ParamState
}

func (s *stateIndex) get(name string) (*ParamState, bool) {
	if s.byName == nil {
		return nil, false
	}
	i, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return &s.params[i], true
}

func (s *stateIndex) add(ps ParamState) *ParamState {
	if s.byName == nil {
		s.byName = make(map[string]int)
	}
	s.byName[ps.Name] = len(s.params)
	s.params = append(s.params, ps)
	return &s.params[len(s.params)-1]
}

// snapshot returns a deep copy so that a checkpoint taken now is not changed
// by later steps.
func (s *stateIndex) snapshot(kind string) State {
	out := State{Kind: kind, Params: make([]ParamState, len(s.params))}
	for i, p := range s.params {
		out.Params[i] = ParamState{Name: p.Name, Step: p.Step, M: cloneF32(p.M), V: cloneF32(p.V)}
	}
	return out
}

// view returns the state without copying it: the slices are the
// optimizer's own (see AdamW.StateView).
func (s *stateIndex) view(kind string) State {
	out := State{Kind: kind, Params: make([]ParamState, len(s.params))}
	for i, p := range s.params {
		out.Params[i] = ParamState{Name: p.Name, Step: p.Step, M: p.M, V: p.V}
	}
	return out
}

// load replaces the state with a deep copy of st after checking it.
func (s *stateIndex) load(kind string, st State, needV bool) error {
	if st.Kind != kind {
		return fmt.Errorf("%w: state is for %q, optimizer is %q", ErrStateMismatch, st.Kind, kind)
	}
	var fresh stateIndex
	for _, p := range st.Params {
		if p.Name == "" {
			return fmt.Errorf("%w: a parameter state has no name", ErrStateMismatch)
		}
		if _, dup := fresh.get(p.Name); dup {
			return fmt.Errorf("%w: parameter %q appears twice", ErrStateMismatch, p.Name)
		}
		if p.Step < 0 {
			return fmt.Errorf("%w: parameter %q: step %d < 0", ErrStateMismatch, p.Name, p.Step)
		}
		if needV && len(p.M) != len(p.V) {
			return fmt.Errorf("%w: parameter %q: m has %d elements, v %d", ErrStateMismatch, p.Name, len(p.M), len(p.V))
		}
		fresh.add(ParamState{Name: p.Name, Step: p.Step, M: cloneF32(p.M), V: cloneF32(p.V)})
	}
	*s = fresh
	return nil
}

func cloneF32(x []float32) []float32 {
	if x == nil {
		return nil
	}
	return append([]float32(nil), x...)
}
