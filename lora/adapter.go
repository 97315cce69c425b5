package lora

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/kernels/dropout"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// Adapter is one named set of LoRA layers for a model.
type Adapter struct {
	Name   string
	Config *Config
	Layers map[string]*Layer // by module name
	// Copies are the trainable full copies of modules_to_save, by module
	// name ("model.embed_tokens", "lm_head").
	Copies map[string]*ModuleCopy
	// Base is the model the adapter belongs to: New takes it from the
	// model (nn.Model.Source), Load from the folder's BaseFile, and Save
	// writes it there (and into base_model_name_or_path when that is
	// unset), so that generate, eval and export find the same base.
	Base Base
}

// modelLinears lists the model's linear layers as the PEFT code sees them.
func modelLinears(m *nn.Model) ([]Linear, map[string]*nn.Linear) {
	var out []Linear
	byName := map[string]*nn.Linear{}
	for _, l := range m.Linears() {
		out = append(out, Linear{Name: l.Name, Out: l.Out(), In: l.In()})
		byName[l.Name] = l
	}
	return out, byName
}

func names(ls []Linear) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	return out
}

// New creates a fresh adapter for m with PEFT's default initialisation:
// A ~ kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in), and B = 0, so training
// starts from the base model exactly. seed makes A and dropout
// reproducible.
func New(m *nn.Model, c *Config, name string, seed uint64) (*Adapter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	linears, byName := modelLinears(m)
	targets, err := c.SelectTargets(names(linears), "lm_head")
	if err != nil {
		return nil, err
	}
	toSave, err := c.SelectModulesToSave(savable(m))
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	a := &Adapter{Name: name, Config: c, Layers: map[string]*Layer{}, Base: BaseOf(m)}
	if a.Copies, err = newCopies(m, c, toSave, nil); err != nil {
		return nil, err
	}
	for _, t := range targets {
		lin := byName[t]
		r, in, out := c.Rank(t), lin.In(), lin.Out()
		bound := 1 / math.Sqrt(float64(in))
		av := make([]float32, r*in)
		for i := range av {
			av[i] = float32((2*rng.Float64() - 1) * bound)
		}
		bv := make([]float32, out*r)
		if !c.InitLoraWeights.Bool && c.InitLoraWeights.Method == "" {
			// init_lora_weights=false: B random too (a non-identity start).
			for i := range bv {
				bv[i] = float32((2*rng.Float64() - 1) * bound)
			}
		}
		a.Layers[t] = a.newLayer(m, t, av, bv, r, in, out, rng.Uint64())
	}
	if c.UseDoRA {
		err := tensor.Catch(func() {
			for _, t := range targets {
				a.Layers[t].initMagnitude(byName[t].Weight.Value, m.MasterDType())
			}
		})
		if err != nil {
			return nil, fmt.Errorf("lora: DoRA magnitude: %w", err)
		}
	}
	return a, nil
}

func (a *Adapter) newLayer(m *nn.Model, module string, av, bv []float32, r, in, out int, seed uint64) *Layer {
	be := m.Backend
	return &Layer{
		drop:    &dropoutStream{key: dropout.Draw(seed, 0xd20)},
		Module:  module,
		A:       autograd.Param(tensor.FromHost(be, tensor.F32, av, r, in).To(m.MasterDType()), module+"."+PartA+".weight"),
		B:       autograd.Param(tensor.FromHost(be, tensor.F32, bv, out, r).To(m.MasterDType()), module+"."+PartB+".weight"),
		Scale:   a.Config.Scaling(module),
		Dropout: a.Config.LoraDropout,
	}
}

// Load reads a PEFT adapter folder (adapter_config.json +
// adapter_model.safetensors) made for m's architecture. Nothing is attached
// when any tensor is missing, unexpected or of the wrong shape, or when
// the folder records a base (BaseFile) whose hash is not m's (CheckBase).
func Load(m *nn.Model, dir, name string) (*Adapter, error) {
	base, _, err := ReadBase(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckBase(base, m); err != nil {
		return nil, fmt.Errorf("lora: adapter %s: %w", dir, err)
	}
	linears, byName := modelLinears(m)
	var toSave []string
	// Every tensor is checked against this model from the file's header,
	// before any is read: a wrong size costs nothing to refuse.
	c, weights, err := loadAdapter(dir, func(c *Config, shapes map[string]Tensor) error {
		if err := CheckWeights(c, shapes, linears, "lm_head"); err != nil {
			return fmt.Errorf("lora: %s: %w", dir, err)
		}
		var err error
		if toSave, err = c.SelectModulesToSave(savable(m)); err != nil {
			return fmt.Errorf("lora: %s: %w", dir, err)
		}
		if err := checkCopyWeights(shapes, copyShapes(m, toSave)); err != nil {
			return fmt.Errorf("lora: %s: %w", dir, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	targets, err := c.SelectTargets(names(linears), "lm_head")
	if err != nil {
		return nil, err
	}
	a := &Adapter{Name: name, Config: c, Layers: map[string]*Layer{}, Base: base}
	if a.Copies, err = newCopies(m, c, toSave, weights); err != nil {
		return nil, fmt.Errorf("lora: %s: %w", dir, err)
	}
	for i, t := range targets {
		lin := byName[t]
		wa, wb := weights[WeightName(t, PartA)], weights[WeightName(t, PartB)]
		l := a.newLayer(m, t, wa.Data, wb.Data, c.Rank(t), lin.In(), lin.Out(), uint64(i))
		if c.UseDoRA {
			mv := weights[MagnitudeName(t)]
			l.Magnitude = autograd.Param(tensor.FromHost(m.Backend, tensor.F32, mv.Data, lin.Out()).To(m.MasterDType()), MagnitudeName(t))
		}
		a.Layers[t] = l
	}
	return a, nil
}

// checkCopyWeights checks the modules_to_save tensors of an adapter file
// against the shapes the model needs (want, from copyShapes): each one
// present with its shape, none for a module not listed.
func checkCopyWeights(weights map[string]Tensor, want map[string][]int) error {
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w, ok := weights[name]
		switch {
		case !ok:
			errs = append(errs, "missing modules_to_save tensor "+name)
		case !slices.Equal(w.Shape, want[name]):
			errs = append(errs, fmt.Sprintf("%s is %v, the model needs %v (a resized vocabulary?)", name, w.Shape, want[name]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(weights)) {
		if _, ok := want[name]; !ok && isCopyName(name) {
			errs = append(errs, "unexpected: "+name)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrAdapterMismatch, listSome(errs))
	}
	return nil
}

// Modules returns the adapted module names, sorted.
func (a *Adapter) Modules() []string {
	out := make([]string, 0, len(a.Layers))
	for k := range a.Layers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Params returns the trainable tensors keyed by in-memory PEFT names
// (module.lora_A.weight).
func (a *Adapter) Params() map[string]*autograd.Var {
	out := map[string]*autograd.Var{}
	for _, l := range a.Layers {
		out[l.A.Name] = l.A
		out[l.B.Name] = l.B
		if l.Magnitude != nil {
			out[l.Magnitude.Name] = l.Magnitude
		}
	}
	for _, c := range a.Copies {
		out[c.Weight.Name] = c.Weight
		if c.Bias != nil {
			out[c.Bias.Name] = c.Bias
		}
	}
	return out
}

// Weights returns the adapter's tensors as host float32 for saving.
func (a *Adapter) Weights() map[string]Tensor {
	out := map[string]Tensor{}
	for name, v := range a.Params() {
		out[name] = Tensor{Shape: v.Value.Shape().Clone(), Data: v.Value.F32()}
	}
	return out
}

// Save writes the adapter as PEFT does (atomically, file by file), then
// its base record (BaseFile; a stale one is removed when Base is zero).
func (a *Adapter) Save(dir string) error { return a.SaveContext(context.Background(), dir) }

// SaveContext is Save stopped by a cancelled ctx before the next tensor,
// with an error wrapping ctx's: the weights file is left as it was and
// nothing after it is written.
func (a *Adapter) SaveContext(ctx context.Context, dir string) error {
	c := a.Config
	if c.BaseModelNameOrPath == "" && a.Base.Path != "" {
		cc := *c
		cc.BaseModelNameOrPath = a.Base.Path
		c = &cc
	}
	// Each tensor is read from the adapter as the file reaches it (not
	// a.Weights(), which copies them all at once).
	params := a.Params()
	shapes := make(map[string][]int, len(params))
	for name, v := range params {
		shapes[name] = v.Value.Shape().Clone()
	}
	write := func(path string) error {
		return writeWeights(ctx, path, shapes, func(name string) []float32 { return params[name].Value.F32() })
	}
	if err := saveAdapter(dir, c, write); err != nil {
		return err
	}
	if a.Base.IsZero() {
		if err := os.Remove(filepath.Join(dir, BaseFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("save adapter: %w", err)
		}
		return nil
	}
	return WriteBase(dir, a.Base)
}

// Attach routes m's target linears through this adapter, and the copied
// modules (modules_to_save) through their copies.
func (a *Adapter) Attach(m *nn.Model) error {
	_, byName := modelLinears(m)
	for name, l := range a.Layers {
		lin, ok := byName[name]
		if !ok {
			return fmt.Errorf("lora: adapter %q targets %s, which the model does not have", a.Name, name)
		}
		lin.Adapter = l
	}
	for name, c := range a.Copies {
		if name == EmbedModule {
			m.EmbedCopy = c.Weight
			continue
		}
		lin, ok := byName[name]
		if !ok {
			return fmt.Errorf("lora: adapter %q saves %s, which the model does not have", a.Name, name)
		}
		lin.Adapter = c
	}
	return nil
}

// Detach restores the plain base layers and embeddings.
func Detach(m *nn.Model) {
	for _, l := range m.Linears() {
		l.Adapter = nil
	}
	m.EmbedCopy = nil
}

// Merge writes each target's merged weight into the base in place: W +
// s·B·A, or DoRA's (m/n) ⊙ (W + s·B·A) (MergedWeight); the weight's dtype
// is kept (a bf16 weight is rounded back to bf16). Copied modules
// (modules_to_save) replace the base values. After merging, the layers
// compute the base path only, so outputs are unchanged up to that rounding.
func (a *Adapter) Merge(m *nn.Model) error { return a.mergeSign(m, 1) }

// Unmerge undoes Merge: subtracts s·B·A (for DoRA, first divides by the
// factor Merge applied) and restores the copied modules' base values.
func (a *Adapter) Unmerge(m *nn.Model) error { return a.mergeSign(m, -1) }

func (a *Adapter) mergeSign(m *nn.Model, sign float64) error {
	if mod, tied := tiedCopy(m, slices.Collect(maps.Keys(a.Copies))); tied {
		// One tensor serves both ends: writing the copy of one into it
		// would change the other, which the adapter leaves as it was.
		return fmt.Errorf("%w: adapter %q trains a separate copy of %s, which this model ties to the other end of the network (tie_word_embeddings); it cannot be merged in place (export.MergedHF writes an untied model)", ErrUnsupported, a.Name, mod)
	}
	_, byName := modelLinears(m)
	return tensor.Catch(func() {
		for _, name := range a.Modules() {
			l := a.Layers[name]
			if (sign > 0) == l.merged {
				continue
			}
			w := byName[name].Weight.Value
			switch {
			case sign > 0 && l.Magnitude != nil:
				norm, sum := l.rowNorms(w)
				release(sum)
				l.mergedNorm = norm
				w.CopyFrom(l.MergedWeight(w))
			case sign > 0:
				w.CopyFrom(l.updated(w))
			default:
				wf := w.To(tensor.F32)
				if l.Magnitude != nil {
					factor := tensor.Div(l.Magnitude.Value.To(tensor.F32), l.mergedNorm)
					wf = tensor.Div(wf, factor.Reshape(-1, 1))
					l.mergedNorm = nil
				}
				d := tensor.MatMul(l.B.Value.To(tensor.F32), l.A.Value.To(tensor.F32), false, false)
				w.CopyFrom(tensor.Sub(wf, tensor.Scale(d, l.Scale)))
			}
			l.merged = sign > 0
			l.forgetWeightSquares() // w was written in place
		}
		for _, name := range slices.Sorted(maps.Keys(a.Copies)) {
			c := a.Copies[name]
			if (sign > 0) == (c.orig != nil) {
				continue
			}
			w, b := m.Embed, (*autograd.Var)(nil)
			if name != EmbedModule {
				w, b = byName[name].Weight, byName[name].Bias
			}
			if sign > 0 {
				c.orig = w.Value.Clone()
				w.Value.CopyFrom(c.Weight.Value)
				if b != nil && c.Bias != nil {
					c.origBias = b.Value.Clone()
					b.Value.CopyFrom(c.Bias.Value)
				}
				continue
			}
			w.Value.CopyFrom(c.orig)
			if c.origBias != nil {
				b.Value.CopyFrom(c.origBias)
			}
			c.orig, c.origBias = nil, nil
		}
	})
}

// Reseed sets every layer's lora_dropout to p (the config's too, which
// Save writes) and starts its dropout stream afresh from seed, layers in
// module order: an adapter loaded to be trained further drops out as the
// run says, not as the file's lora_dropout and a fixed stream would.
func (a *Adapter) Reseed(p float64, seed uint64) {
	a.Config.LoraDropout = p
	rng := rand.New(rand.NewPCG(seed, 0xd20d))
	for _, name := range a.Modules() {
		l := a.Layers[name]
		l.Dropout = p
		l.drop = &dropoutStream{key: dropout.Draw(rng.Uint64(), 0xd20)}
	}
}

// SaveRNG returns every layer's dropout stream (train.RNGStates).
func (a *Adapter) SaveRNG() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, l := range a.Layers {
		b, err := l.RNGState()
		if err != nil {
			return nil, err
		}
		out[a.Name+"/"+name] = b
	}
	return out, nil
}

// LoadRNG restores streams saved by SaveRNG.
func (a *Adapter) LoadRNG(m map[string][]byte) error {
	for name, l := range a.Layers {
		b, ok := m[a.Name+"/"+name]
		if !ok {
			return fmt.Errorf("lora: checkpoint has no dropout stream for %s/%s", a.Name, name)
		}
		if err := l.SetRNGState(b); err != nil {
			return err
		}
	}
	return nil
}
