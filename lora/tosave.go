package lora

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/nn"
	"github.com/ftune/ftune/tensor"
)

// EmbedModule is the module name of the input embedding table.
const EmbedModule = "model.embed_tokens"

// ModuleCopy is a full trainable copy of a base module, PEFT's
// modules_to_save (ModulesToSaveWrapper): the embedding table, the LM head
// or another linear layer, trained alongside the adapter (for users who add
// tokens) and saved in the adapter file under the module's own names
// ("base_model.model.lm_head.weight"). The base module stays untouched.
type ModuleCopy struct {
	Module string        // "model.embed_tokens", "lm_head", ...
	Weight *autograd.Var // named Module + ".weight"
	Bias   *autograd.Var // a linear's bias, nil when it has none
	// orig holds the base values Merge replaced (for Unmerge).
	orig, origBias *tensor.Tensor
}

// Forward implements nn.Adapter for a copied linear: the copy replaces the
// whole layer.
func (c *ModuleCopy) Forward(tp *autograd.Tape, _ *nn.Linear, x *autograd.Var) (*autograd.Var, bool) {
	return tp.Linear(x, c.Weight, c.Bias), true
}

// savable lists what modules_to_save can copy in m: the embedding table and
// every linear layer, by full module name.
func savable(m *nn.Model) []string {
	out := []string{EmbedModule}
	for _, l := range m.Linears() {
		out = append(out, l.Name)
	}
	return out
}

// SelectModulesToSave resolves modules_to_save against the modules of a
// model (full names, from savable): an entry names a module by its full
// name or its last dotted part(s), as PEFT matches it
// (re.match(rf"(^|.*\.){entry}($|\..*)", name)). An entry that matches no
// copyable module, or only a module containing others (PEFT would copy a
// whole block, norms included), is an error naming what can be copied.
func (c *Config) SelectModulesToSave(modules []string) ([]string, error) {
	var out []string
	for _, e := range c.ModulesToSave {
		exact, err := regexp.Compile(`^(?:.*\.)?(?:` + e + `)$`)
		if err != nil {
			return nil, fmt.Errorf("%w: modules_to_save entry %q: %v", ErrInvalidConfig, e, err)
		}
		prefix := regexp.MustCompile(`^(?:.*\.)?(?:` + e + `)\.`)
		found := false
		for _, mod := range modules {
			if exact.MatchString(mod) {
				found = true
				if !slices.Contains(out, mod) {
					out = append(out, mod)
				}
			} else if prefix.MatchString(mod) {
				return nil, fmt.Errorf("%w: modules_to_save entry %q names a module that holds other modules (such as %s); ftune copies the embedding table and single linear layers only, so list those", ErrUnsupported, e, mod)
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: modules_to_save entry %q matches no module ftune can copy (the embedding table %s or a linear layer); %s", ErrInvalidConfig, e, EmbedModule, describeModules(modules))
		}
	}
	slices.Sort(out)
	return out, nil
}

// tiedCopy reports whether copies touch a tied embedding table or LM head.
func tiedCopy(m *nn.Model, copies []string) (string, bool) {
	if !m.Config.TieEmbeddings {
		return "", false
	}
	for _, mod := range copies {
		if mod == EmbedModule || mod == "lm_head" {
			return mod, true
		}
	}
	return "", false
}

// checkTiedCopies applies PEFT's rule for copies of a tied embedding table
// or LM head. Without ensure_weight_tying (its default) PEFT deep-copies
// each listed module, so the trained copy of one end no longer moves the
// other (it warns, issue 2777): ftune does the same, the copies being
// separate tensors, and a merged export unties the model. With
// ensure_weight_tying PEFT makes both ends share one copy, which ftune does
// not implement.
func (c *Config) checkTiedCopies(m *nn.Model, copies []string) error {
	mod, tied := tiedCopy(m, copies)
	if tied && c.EnsureWeightTying() {
		return fmt.Errorf("%w: modules_to_save %s with ensure_weight_tying on a model whose lm_head shares the embedding table (tie_word_embeddings): one copy shared by both ends is not implemented; set ensure_weight_tying to false (separate copies, as PEFT's default)", ErrUnsupported, mod)
	}
	return nil
}

// EnsureWeightTying is PEFT's ensure_weight_tying (false when absent).
func (c *Config) EnsureWeightTying() bool {
	v, ok := c.extra["ensure_weight_tying"]
	return ok && strings.TrimSpace(string(v)) == "true"
}

// newCopies makes the trainable copies of modules (from
// SelectModulesToSave), from the base values or from weights (a loaded
// adapter; nil for a new one), in the model's compute dtype.
func newCopies(m *nn.Model, c *Config, modules []string, weights map[string]Tensor) (map[string]*ModuleCopy, error) {
	if err := c.checkTiedCopies(m, modules); err != nil {
		return nil, err
	}
	lin := map[string]*nn.Linear{}
	for _, l := range m.Linears() {
		lin[l.Name] = l
	}
	param := func(base *tensor.Tensor, name string) *autograd.Var {
		if w, ok := weights[name]; ok {
			return autograd.Param(tensor.FromHost(m.Backend, tensor.F32, w.Data, w.Shape...).To(m.MasterDType()), name)
		}
		return autograd.Param(base.To(tensor.F32).To(m.MasterDType()).Clone(), name)
	}
	out := map[string]*ModuleCopy{}
	for _, mod := range modules {
		cp := &ModuleCopy{Module: mod}
		switch l := lin[mod]; {
		case mod == EmbedModule:
			cp.Weight = param(m.Embed.Value, mod+".weight")
		case l != nil:
			if l.Weight.Value.DType() == tensor.NF4 {
				return nil, fmt.Errorf("%w: modules_to_save %s: the base weight is NF4 (load_in_4bit); PEFT copies it as a quantized module that cannot train, so ftune refuses it", ErrUnsupported, mod)
			}
			cp.Weight = param(l.Weight.Value, mod+".weight")
			if l.Bias != nil {
				cp.Bias = param(l.Bias.Value, mod+".bias")
			}
		default:
			return nil, fmt.Errorf("lora: modules_to_save %s is not a module of the model", mod)
		}
		out[mod] = cp
	}
	return out, nil
}

// copyShapes are the tensors CheckWeights expects for the copies.
func copyShapes(m *nn.Model, modules []string) map[string][]int {
	want := map[string][]int{}
	lin := map[string]*nn.Linear{}
	for _, l := range m.Linears() {
		lin[l.Name] = l
	}
	for _, mod := range modules {
		if mod == EmbedModule {
			want[mod+".weight"] = m.Embed.Value.Shape().Clone()
			continue
		}
		if l := lin[mod]; l != nil {
			want[mod+".weight"] = []int{l.Out(), l.In()}
			if l.Bias != nil {
				want[mod+".bias"] = l.Bias.Value.Shape().Clone()
			}
		}
	}
	return want
}

// isCopyName reports whether an in-memory tensor name belongs to a module
// copy rather than to a LoRA layer.
func isCopyName(name string) bool {
	_, _, lora := SplitWeightName(name)
	return !lora && !strings.HasSuffix(name, "."+PartMagnitude)
}
