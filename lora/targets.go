package lora

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// targetMatcher holds the compiled regular expressions of a config.
type targetMatcher struct {
	target        *regexp.Regexp // nil for a name list or all-linear
	exclude       *regexp.Regexp
	modulesToSave []*regexp.Regexp
	layerIndex    []*regexp.Regexp
}

// fullMatch compiles a Python re.fullmatch pattern for RE2.
func fullMatch(what, pat string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + pat + `)$`)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q is not a regular expression Go's RE2 accepts: %v", ErrInvalidConfig, what, pat, err)
	}
	return re, nil
}

func (c *Config) matcher() (*targetMatcher, error) {
	m := &targetMatcher{}
	var err error
	if c.TargetModules.IsRegex && !c.isAllLinear() {
		if m.target, err = fullMatch("target_modules", c.TargetModules.Regex); err != nil {
			return nil, err
		}
	}
	if c.ExcludeModules.IsRegex {
		if m.exclude, err = fullMatch("exclude_modules", c.ExcludeModules.Regex); err != nil {
			return nil, err
		}
	}
	for _, s := range c.ModulesToSave {
		// PEFT: re.match(rf"(^|.*\.){m}($|\..*)", key)
		re, err := regexp.Compile(`^(?:^|.*\.)` + s + `(?:$|\..*)`)
		if err != nil {
			return nil, fmt.Errorf("%w: modules_to_save entry %q: %v", ErrInvalidConfig, s, err)
		}
		m.modulesToSave = append(m.modulesToSave, re)
	}
	pats := c.LayersPattern
	if len(pats) == 0 {
		pats = nil
	}
	if pats == nil {
		// The first numbered segment after at least one dot-separated
		// component: PEFT's r".*?\.[^.]*\.(\d+)\.".
		m.layerIndex = []*regexp.Regexp{regexp.MustCompile(`^.*?\.[^.]*\.(\d+)\.`)}
	}
	for _, p := range pats {
		re, err := regexp.Compile(`^.*?\.` + p + `\.(\d+)\.`)
		if err != nil {
			return nil, fmt.Errorf("%w: layers_pattern %q: %v", ErrInvalidConfig, p, err)
		}
		m.layerIndex = append(m.layerIndex, re)
	}
	for _, ps := range [][]Pattern{c.RankPattern, c.AlphaPattern} {
		for _, p := range ps {
			if _, err := regexp.Compile(p.Key); err != nil {
				return nil, fmt.Errorf("%w: pattern key %q: %v", ErrInvalidConfig, p.Key, err)
			}
		}
	}
	return m, nil
}

func (c *Config) isAllLinear() bool {
	return c.TargetModules.IsRegex && strings.EqualFold(c.TargetModules.Regex, AllLinear)
}

// SelectTargets returns, in the given order, the linear modules (full
// names such as "model.layers.0.self_attn.q_proj") that get an adapter,
// following PEFT's check_target_module_exists: exclude_modules and
// modules_to_save first, then target_modules (a regex must match the whole
// name; a list entry must equal the name or be its last dotted part(s)),
// then layers_to_transform. "all-linear" takes every linear except
// outputHead (the output embedding, "lm_head" for Llama models; "" for
// none). A list entry, or a regex, that matches no module is an error that
// lists the modules there are: a typo must not train an empty adapter.
func (c *Config) SelectTargets(linears []string, outputHead string) ([]string, error) {
	m, err := c.matcher()
	if err != nil {
		return nil, err
	}
	used := make([]bool, len(c.TargetModules.Names))
	var out []string
	for _, key := range linears {
		if c.excluded(m, key) {
			continue
		}
		switch {
		case c.isAllLinear():
			if key != outputHead {
				out = append(out, key)
			}
		case m.target != nil:
			if m.target.MatchString(key) {
				out = append(out, key)
			}
		default:
			found := false
			for i, t := range c.TargetModules.Names {
				if key == t || strings.HasSuffix(key, "."+t) {
					used[i], found = true, true
				}
			}
			if found && !slices.Contains(c.TargetModules.Names, key) && !c.layerSelected(m, key) {
				found = false
			}
			if found {
				out = append(out, key)
			}
		}
	}
	for i, u := range used {
		if !u {
			return nil, fmt.Errorf("%w: target module %q matches no linear layer (after exclusions)%s; %s", ErrInvalidConfig, c.TargetModules.Names[i], fusedHint(c.TargetModules.Names[i], linears), describeModules(linears))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: target_modules %s selects no linear layer; %s", ErrInvalidConfig, compactTargets(c.TargetModules), describeModules(linears))
	}
	return out, nil
}

func (c *Config) excluded(m *targetMatcher, key string) bool {
	if m.exclude != nil && m.exclude.MatchString(key) {
		return true
	}
	for _, e := range c.ExcludeModules.Names {
		if key == e || strings.HasSuffix(key, "."+e) {
			return true
		}
	}
	for _, re := range m.modulesToSave {
		if re.MatchString(key) {
			return true
		}
	}
	return false
}

// layerSelected applies layers_to_transform to a module matched by a list
// entry that is not its full name.
func (c *Config) layerSelected(m *targetMatcher, key string) bool {
	if c.LayersToTransform == nil {
		return true
	}
	for _, re := range m.layerIndex {
		if sm := re.FindStringSubmatch(key); sm != nil {
			idx, err := strconv.Atoi(sm[1])
			return err == nil && slices.Contains(c.LayersToTransform, idx)
		}
	}
	return false
}

func compactTargets(t Targets) string {
	b, _ := t.MarshalJSON()
	return string(b)
}

// fusedHint explains a Llama-style target on a model with fused
// projections (Phi-3 stores self_attn.qkv_proj and mlp.gate_up_proj, the
// module names PEFT targets there): the LoRA goes on the fused module.
func fusedHint(target string, linears []string) string {
	if target == "all" {
		return `: LLaMA-Factory's "all" is "all-linear" here (PEFT's name), which targets every linear layer but the output head`
	}
	fused := map[string]string{"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj", "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}
	f, ok := fused[target[strings.LastIndexByte(target, '.')+1:]]
	if !ok || !slices.ContainsFunc(linears, func(l string) bool { return strings.HasSuffix(l, "."+f) }) {
		return ""
	}
	return fmt.Sprintf(": this model fuses it into %s (PEFT's name for these models), target that", f)
}

// describeModules summarises the available linear layers: their distinct
// last names and a few full names.
func describeModules(linears []string) string {
	if len(linears) == 0 {
		return "the model has no linear layers"
	}
	var leaves []string
	for _, l := range linears {
		leaf := l[strings.LastIndexByte(l, '.')+1:]
		if !slices.Contains(leaves, leaf) {
			leaves = append(leaves, leaf)
		}
	}
	slices.Sort(leaves)
	ex := linears[:min(3, len(linears))]
	return fmt.Sprintf("available linear modules: %s (%d in all, e.g. %s)", strings.Join(leaves, ", "), len(linears), strings.Join(ex, ", "))
}

// Rank returns r for a module (full name, e.g. "model.layers.0.self_attn.q_proj"),
// honouring rank_pattern.
func (c *Config) Rank(module string) int {
	if v, ok := matchPattern(c.RankPattern, module); ok {
		return int(v)
	}
	return c.R
}

// Alpha returns lora_alpha for a module, honouring alpha_pattern.
func (c *Config) Alpha(module string) float64 {
	if v, ok := matchPattern(c.AlphaPattern, module); ok {
		return v
	}
	return c.LoraAlpha
}

// Scaling is the factor s of y = W·x + s·B·A·x for a module: alpha/r, or
// alpha/√r with use_rslora.
func (c *Config) Scaling(module string) float64 {
	r := float64(c.Rank(module))
	if c.UseRSLoRA {
		return c.Alpha(module) / math.Sqrt(r)
	}
	return c.Alpha(module) / r
}

// matchPattern is PEFT's get_pattern_key: the first key k for which
// re.match(rf"(.*\.)?({k})$", module) succeeds. Keys that are not valid
// RE2 never match (Validate has reported them).
func matchPattern(ps []Pattern, module string) (float64, bool) {
	for _, p := range ps {
		re, err := regexp.Compile(`^(?:.*\.)?(?:` + p.Key + `)$`)
		if err == nil && re.MatchString(module) {
			return p.Value, true
		}
	}
	return 0, false
}
