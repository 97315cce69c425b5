package lora

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// SubjectAdapterModel holds several named adapters on one frozen base.
// Either one adapter is active for every row (SetActive), the base runs
// plain (Disable), or each row of a batch names its own adapter
// (ForwardRouted): N subject adapters then train in one pass over a mixed
// batch, each receiving gradients only from its own rows.
type SubjectAdapterModel struct {
	Base     *nn.Model
	adapters map[string]*Adapter
	active   string
}

// NewSubjectAdapterModel wraps a base model; its weights are frozen.
func NewSubjectAdapterModel(base *nn.Model) *SubjectAdapterModel {
	base.SetTrainable(false)
	Detach(base)
	return &SubjectAdapterModel{Base: base, adapters: map[string]*Adapter{}}
}

// Add registers an adapter under its Name.
func (s *SubjectAdapterModel) Add(a *Adapter) error {
	if a.Name == "" {
		return fmt.Errorf("lora: an adapter needs a name")
	}
	if _, dup := s.adapters[a.Name]; dup {
		return fmt.Errorf("lora: adapter %q already loaded", a.Name)
	}
	for _, l := range a.Layers {
		if l.merged {
			return fmt.Errorf("lora: adapter %q is merged into the base; unmerge it first", a.Name)
		}
	}
	s.adapters[a.Name] = a
	return nil
}

// Load reads a PEFT adapter folder and adds it as name.
func (s *SubjectAdapterModel) Load(dir, name string) error {
	a, err := Load(s.Base, dir, name)
	if err != nil {
		return err
	}
	return s.Add(a)
}

// Remove drops an adapter (disabling the model if it was active).
func (s *SubjectAdapterModel) Remove(name string) error {
	if _, ok := s.adapters[name]; !ok {
		return s.unknown(name)
	}
	delete(s.adapters, name)
	if s.active == name {
		s.Disable()
	}
	return nil
}

// Adapter returns a loaded adapter.
func (s *SubjectAdapterModel) Adapter(name string) (*Adapter, bool) {
	a, ok := s.adapters[name]
	return a, ok
}

// Names lists the loaded adapters, sorted.
func (s *SubjectAdapterModel) Names() []string {
	out := make([]string, 0, len(s.adapters))
	for k := range s.adapters {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Active is the adapter applied to every row ("" when disabled or routed).
func (s *SubjectAdapterModel) Active() string { return s.active }

// SetActive applies one adapter to every row.
func (s *SubjectAdapterModel) SetActive(name string) error {
	a, ok := s.adapters[name]
	if !ok {
		return s.unknown(name)
	}
	Detach(s.Base)
	s.active = name
	return a.Attach(s.Base)
}

// Disable runs the plain base model.
func (s *SubjectAdapterModel) Disable() {
	Detach(s.Base)
	s.active = ""
}

func (s *SubjectAdapterModel) unknown(name string) error {
	return fmt.Errorf("lora: no adapter named %q (loaded: %v)", name, s.Names())
}

// ForwardRouted runs a batch whose row b goes through adapter rows[b] (""
// = the plain base). Afterwards the previous SetActive/Disable state is
// restored.
func (s *SubjectAdapterModel) ForwardRouted(tp *autograd.Tape, in nn.Batch, rows []string, opt nn.ForwardOptions) (nn.Output, error) {
	if in.InputIDs == nil || len(rows) != in.InputIDs.Dim(0) {
		return nn.Output{}, fmt.Errorf("lora: %d row routes for a batch of %d rows", len(rows), in.InputIDs.Dim(0))
	}
	for _, r := range rows {
		if _, ok := s.adapters[r]; r != "" && !ok {
			return nn.Output{}, s.unknown(r)
		}
		if a := s.adapters[r]; a != nil && len(a.Copies) > 0 {
			// The copies replace whole modules (the embedding table, the
			// LM head), which a row-routed batch cannot switch per row.
			return nn.Output{}, fmt.Errorf("lora: adapter %q has modules_to_save (%v), which per-row routing does not support; activate it alone (SetActive)", r, slices.Sorted(maps.Keys(a.Copies)))
		}
	}
	prev := s.active
	defer func() {
		if prev != "" {
			_ = s.SetActive(prev)
		} else {
			s.Disable()
		}
	}()
	Detach(s.Base)
	for _, lin := range s.Base.Linears() {
		r := &router{rows: rows, layers: map[string]*Layer{}}
		for name, a := range s.adapters {
			if l, ok := a.Layers[lin.Name]; ok {
				r.layers[name] = l
			}
		}
		if len(r.layers) > 0 {
			lin.Adapter = r
		}
	}
	return s.Base.Forward(tp, in, opt)
}

// router sends each batch row of one linear layer through its adapter:
// rows are grouped by adapter, each group runs as one fused LoRA node, and
// the groups are put back in row order.
type router struct {
	rows   []string
	layers map[string]*Layer // adapter name → its layer for this module
}

func (r *router) Forward(tp *autograd.Tape, lin *nn.Linear, x *autograd.Var) (*autograd.Var, bool) {
	if n := x.Shape()[0]; n != len(r.rows) {
		// Rows are batch rows: a layer given anything else (the MLP over
		// chunks of tokens, nn.Model.MLPChunkTokens, flattens them) would
		// send tokens through other rows' adapters.
		panic(&tensor.Error{Err: fmt.Errorf("lora: %s: per-row routing of %d rows got an input of %d (per-subject adapters need the batch rows whole: training.mlp_chunk_tokens is not supported with them)", lin.Name, len(r.rows), n)})
	}
	groups := map[string][]int{}
	var order []string
	for b, name := range r.rows {
		if _, ok := r.layers[name]; !ok {
			name = "" // no adapter for this module: base path
		}
		if _, seen := groups[name]; !seen {
			order = append(order, name)
		}
		groups[name] = append(groups[name], b)
	}
	if len(order) == 1 {
		if l, ok := r.layers[order[0]]; ok {
			return l.Forward(tp, lin, x)
		}
		return lin.Base(tp, x), true
	}
	outRow := make([]*autograd.Var, len(r.rows))
	for _, name := range order {
		idx := groups[name]
		parts := make([]*autograd.Var, len(idx))
		for i, b := range idx {
			parts[i] = tp.Narrow(x, 0, b, 1)
		}
		xg := tp.Concat(0, parts...)
		var yg *autograd.Var
		if l, ok := r.layers[name]; ok {
			yg, _ = l.Forward(tp, lin, xg)
		} else {
			yg = lin.Base(tp, xg)
		}
		for i, b := range idx {
			outRow[b] = tp.Narrow(yg, 0, i, 1)
		}
	}
	return tp.Concat(0, outRow...), true
}
