package lora

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrUnsupported is wrapped by the errors for adapter_config.json features
// that ftune does not implement (other PEFT types, lora_bias, ...).
var ErrUnsupported = errors.New("unsupported PEFT feature")

// ErrInvalidConfig is wrapped by the errors for values PEFT itself rejects
// or that make no sense (r <= 0, alpha <= 0, a bad regular expression, ...).
var ErrInvalidConfig = errors.New("invalid LoRA config")

// PEFTVersion is the PEFT release whose adapter_config.json key set ftune
// writes (all of its LoraConfig fields, so that it loads without warnings).
const PEFTVersion = "0.21.0"

// Config is a PEFT LoraConfig as stored in adapter_config.json. Fields ftune
// uses are typed; every other key read from a file is kept verbatim and
// written back, so a read-modify-write round trip loses nothing.
type Config struct {
	PeftType            string // "LORA"
	TaskType            string // "CAUSAL_LM" ("" is written as null)
	BaseModelNameOrPath string // "" is written as null
	InferenceMode       bool
	PeftVersion         string

	R           int
	LoraAlpha   float64
	LoraDropout float64
	UseRSLoRA   bool // scaling alpha/√r instead of alpha/r

	TargetModules  Targets
	ExcludeModules Targets
	// LayersToTransform restricts list targets to these layer indices (nil:
	// all layers); LayersPattern names the module list holding the layers
	// ("layers"), nil meaning any.
	LayersToTransform []int
	LayersPattern     []string
	ModulesToSave     []string
	// RankPattern and AlphaPattern override r and lora_alpha for modules
	// whose name matches a key (PEFT: re.match(r"(.*\.)?(key)$", name)), in
	// file order; the first matching key wins.
	RankPattern  []Pattern
	AlphaPattern []Pattern

	Bias            string // only "none" is supported
	FanInFanOut     bool
	UseDoRA         bool
	LoraBias        bool
	InitLoraWeights InitLoraWeights

	extra map[string]json.RawMessage // keys read but not typed above
}

// Pattern is one entry of rank_pattern or alpha_pattern.
type Pattern struct {
	Key   string
	Value float64
}

// Targets is target_modules (or exclude_modules): either a list of module
// names, each matching a module whose name equals it or ends with "."+it, or
// one regular expression that must match the whole module name. The special
// regex "all-linear" selects every linear layer except the output head.
type Targets struct {
	Names   []string
	Regex   string
	IsRegex bool
}

// IsEmpty reports whether nothing is targeted (null in the file).
func (t Targets) IsEmpty() bool { return !t.IsRegex && t.Names == nil }

// AllLinear is PEFT's INCLUDE_LINEAR_LAYERS_SHORTHAND.
const AllLinear = "all-linear"

// InitLoraWeights is init_lora_weights: true (A kaiming-uniform, B zero),
// false (B random too: a non-identity start, for tests) or a method name.
type InitLoraWeights struct {
	Bool   bool
	Method string // "" when the value is a bool
}

// NewConfig returns the config of a new adapter with PEFT's defaults for
// everything not given: dropout 0, bias "none", standard initialisation,
// task CAUSAL_LM. targets are module names (a list in the file), except
// that the single target "all-linear" selects every linear but the output
// head; use SetTargetRegex for a regular expression.
func NewConfig(r int, alpha float64, targets ...string) *Config {
	c := &Config{
		PeftType: "LORA", TaskType: "CAUSAL_LM", InferenceMode: true, PeftVersion: PEFTVersion,
		R: r, LoraAlpha: alpha, Bias: "none", InitLoraWeights: InitLoraWeights{Bool: true},
	}
	if len(targets) == 1 && strings.EqualFold(targets[0], AllLinear) {
		c.SetTargetRegex(AllLinear)
	} else {
		c.TargetModules = Targets{Names: slices.Clone(targets)}
	}
	return c
}

// SetTargetRegex targets the modules whose full name matches re.
func (c *Config) SetTargetRegex(re string) { c.TargetModules = Targets{Regex: re, IsRegex: true} }

// ParseConfig decodes and validates adapter_config.json. Unsupported
// features and invalid values are errors (wrapping ErrUnsupported or
// ErrInvalidConfig); nothing is returned half-parsed.
func ParseConfig(data []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrInvalidConfig, err)
	}
	c := &Config{extra: map[string]json.RawMessage{}}
	take := func(key string, dst any) error {
		v, ok := raw[key]
		if !ok {
			return nil
		}
		delete(raw, key)
		if isNull(v) {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%w: %q: %v", ErrInvalidConfig, key, err)
		}
		return nil
	}
	var alpha, dropout *float64
	var r *float64
	// PEFT's default is true; an explicit null also means the default.
	if v, ok := raw["init_lora_weights"]; !ok || isNull(v) {
		c.InitLoraWeights.Bool = true
	}
	errs := []error{
		take("peft_type", &c.PeftType),
		take("task_type", &c.TaskType),
		take("base_model_name_or_path", &c.BaseModelNameOrPath),
		take("inference_mode", &c.InferenceMode),
		take("peft_version", &c.PeftVersion),
		take("r", &r),
		take("lora_alpha", &alpha),
		take("lora_dropout", &dropout),
		take("use_rslora", &c.UseRSLoRA),
		take("target_modules", &c.TargetModules),
		take("exclude_modules", &c.ExcludeModules),
		take("modules_to_save", &c.ModulesToSave),
		take("bias", &c.Bias),
		take("fan_in_fan_out", &c.FanInFanOut),
		take("use_dora", &c.UseDoRA),
		take("lora_bias", &c.LoraBias),
		take("init_lora_weights", &c.InitLoraWeights),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var err error
	if c.LayersToTransform, err = intOrList(raw, "layers_to_transform"); err != nil {
		return nil, err
	}
	if c.LayersPattern, err = stringOrList(raw, "layers_pattern"); err != nil {
		return nil, err
	}
	if c.RankPattern, err = orderedPatterns(raw, "rank_pattern"); err != nil {
		return nil, err
	}
	if c.AlphaPattern, err = orderedPatterns(raw, "alpha_pattern"); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("%w: no \"r\"", ErrInvalidConfig)
	}
	if *r != math.Trunc(*r) {
		return nil, fmt.Errorf("%w: r = %v is not an integer", ErrInvalidConfig, *r)
	}
	if math.Abs(*r) > 1<<30 {
		return nil, fmt.Errorf("%w: r = %.0f, more than any adapter's rank (at most 2^30)", ErrInvalidConfig, *r)
	}
	c.R = int(*r)
	c.LoraAlpha = 8 // PEFT's default when the key is absent
	if alpha != nil {
		c.LoraAlpha = *alpha
	}
	if dropout != nil {
		c.LoraDropout = *dropout
	}
	if c.Bias == "" {
		c.Bias = "none"
	}
	for k, v := range raw {
		c.extra[k] = v
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// unsupportedWhenSet are LoraConfig keys whose non-null value turns on a
// feature ftune does not implement.
var unsupportedWhenSet = []string{
	"layer_replication", "alora_invocation_tokens", "target_parameters", "trainable_token_indices",
	"megatron_config", "use_bdlora", "arrow_config", "kasa_config", "velora_config",
	"monteclora_config", "corda_config", "lora_ga_config",
}

// Validate checks the values and rejects features ftune does not implement.
func (c *Config) Validate() error {
	unsup := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.PeftType != "LORA":
		return unsup("peft_type %q (only LORA)", c.PeftType)
	case c.TaskType != "" && c.TaskType != "CAUSAL_LM":
		return unsup("task_type %q (only CAUSAL_LM)", c.TaskType)
	case c.R <= 0:
		return bad("r = %d, must be > 0", c.R)
	case !(c.LoraAlpha > 0) || math.IsInf(c.LoraAlpha, 0):
		return bad("lora_alpha = %v, must be > 0", c.LoraAlpha)
	case !(c.LoraDropout >= 0 && c.LoraDropout < 1):
		return bad("lora_dropout = %v, must be in [0, 1)", c.LoraDropout)
	case c.LoraBias:
		return unsup("lora_bias (a bias on lora_B)")
	case c.FanInFanOut:
		return unsup("fan_in_fan_out (Conv1D weights stored transposed, GPT-2 style)")
	case c.Bias != "none":
		return unsup("bias %q (training biases; only \"none\")", c.Bias)
	case c.TargetModules.IsEmpty():
		return bad("no target_modules")
	}
	switch m := c.InitLoraWeights.Method; m {
	case "", "gaussian", "eva", "orthogonal":
	default:
		// pissa, olora, corda, loftq, lora_ga also rewrite the base weights,
		// which an adapter file does not carry.
		return unsup("init_lora_weights %q", m)
	}
	for _, k := range unsupportedWhenSet {
		if v, ok := c.extra[k]; ok && !isNull(v) {
			return unsup("%s = %s", k, compact(v))
		}
	}
	if v, ok := c.extra["use_qalora"]; ok && string(bytes.TrimSpace(v)) == "true" {
		return unsup("use_qalora")
	}
	if v, ok := c.extra["loftq_config"]; ok && !isNull(v) && compact(v) != "{}" {
		return unsup("loftq_config = %s", compact(v))
	}
	if c.TargetModules.IsRegex && (c.LayersToTransform != nil || c.LayersPattern != nil) {
		// PEFT raises the same in LoraConfig.__post_init__.
		return bad("layers_to_transform / layers_pattern cannot be used when target_modules is a string")
	}
	if c.LayersPattern != nil && c.LayersToTransform == nil {
		return bad("layers_pattern needs layers_to_transform")
	}
	for _, p := range c.RankPattern {
		if p.Value <= 0 || p.Value != math.Trunc(p.Value) {
			return bad("rank_pattern[%q] = %v, must be an integer > 0", p.Key, p.Value)
		}
	}
	for _, p := range c.AlphaPattern {
		if !(p.Value > 0) {
			return bad("alpha_pattern[%q] = %v, must be > 0", p.Key, p.Value)
		}
	}
	if err := c.checkScaling(); err != nil {
		return err
	}
	if _, err := c.matcher(); err != nil {
		return err
	}
	return nil
}

// MaxScaling bounds the factor s of y = W·x + s·B·A·x (Scaling): alpha/r,
// or alpha/√r with use_rslora. PEFT accepts any alpha, but published
// settings give s from 0.25 (QLoRA's alpha 16 at r 64) to about 32 (alpha
// 128 at r 4; mlx-lm's default scale is 20), and s only multiplies what
// training puts in B (zero at the start), so a larger s is an effective
// learning rate no adapter is trained with. 1e4 leaves 300 times the
// largest of them. Far beyond it the update overflows in use: an adapter
// with lora_alpha 1e38 has finite weights, and so has the model merged
// with it (up to 8.5e33 on tiny-base after one training step), but every
// forward pass through either gives NaN logits.
const MaxScaling = 1e4

// checkScaling refuses a config whose scaling exceeds MaxScaling for some
// module: the largest alpha (lora_alpha or an alpha_pattern value) over
// the smallest rank (r or a rank_pattern value), as a module matched by
// both patterns would take.
func (c *Config) checkScaling() error {
	alphaKey, alpha := "lora_alpha", c.LoraAlpha
	for _, p := range c.AlphaPattern {
		if p.Value > alpha {
			alphaKey, alpha = fmt.Sprintf("alpha_pattern[%q]", p.Key), p.Value
		}
	}
	rankKey, rank := "r", float64(c.R)
	for _, p := range c.RankPattern {
		if p.Value < rank {
			rankKey, rank = fmt.Sprintf("rank_pattern[%q]", p.Key), p.Value
		}
	}
	s, rule := alpha/rank, "alpha/r"
	if c.UseRSLoRA {
		s, rule = alpha/math.Sqrt(rank), "alpha/√r (use_rslora)"
	}
	if s <= MaxScaling {
		return nil
	}
	return fmt.Errorf("%w: %s = %v with %s = %v scales the update by %s = %.3g; ftune takes at most %g (published adapters use 0.25 to 32, and scalings far beyond overflow float32 in use): the value is corrupt or was edited",
		ErrInvalidConfig, alphaKey, alpha, rankKey, rank, rule, s, float64(MaxScaling))
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

func compact(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

// UnmarshalJSON reads a list of names or a regex string.
func (t *Targets) UnmarshalJSON(b []byte) error {
	*t = Targets{}
	if isNull(b) {
		return nil
	}
	if len(bytes.TrimSpace(b)) > 0 && bytes.TrimSpace(b)[0] == '"' {
		t.IsRegex = true
		return json.Unmarshal(b, &t.Regex)
	}
	t.Names = []string{}
	return json.Unmarshal(b, &t.Names)
}

// MarshalJSON writes a string, a list, or null.
func (t Targets) MarshalJSON() ([]byte, error) {
	if t.IsRegex {
		return json.Marshal(t.Regex)
	}
	if t.Names == nil {
		return []byte("null"), nil
	}
	return json.Marshal(t.Names)
}

// UnmarshalJSON reads true, false or a method name.
func (w *InitLoraWeights) UnmarshalJSON(b []byte) error {
	*w = InitLoraWeights{}
	if err := json.Unmarshal(b, &w.Bool); err == nil {
		return nil
	}
	return json.Unmarshal(b, &w.Method)
}

// MarshalJSON writes the bool or the method name.
func (w InitLoraWeights) MarshalJSON() ([]byte, error) {
	if w.Method != "" {
		return json.Marshal(w.Method)
	}
	return json.Marshal(w.Bool)
}

func intOrList(raw map[string]json.RawMessage, key string) ([]int, error) {
	v, ok := raw[key]
	delete(raw, key)
	if !ok || isNull(v) {
		return nil, nil
	}
	var one int
	if json.Unmarshal(v, &one) == nil {
		return []int{one}, nil
	}
	list := []int{}
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, fmt.Errorf("%w: %q must be an integer or a list of integers: %v", ErrInvalidConfig, key, err)
	}
	return list, nil
}

func stringOrList(raw map[string]json.RawMessage, key string) ([]string, error) {
	v, ok := raw[key]
	delete(raw, key)
	if !ok || isNull(v) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(v, &one) == nil {
		return []string{one}, nil
	}
	list := []string{}
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, fmt.Errorf("%w: %q must be a string or a list of strings: %v", ErrInvalidConfig, key, err)
	}
	return list, nil
}

// orderedPatterns decodes a JSON object of numbers keeping the key order,
// which decides which pattern wins in PEFT.
func orderedPatterns(raw map[string]json.RawMessage, key string) ([]Pattern, error) {
	v, ok := raw[key]
	delete(raw, key)
	if !ok || isNull(v) {
		return nil, nil
	}
	bad := func(err any) error {
		return fmt.Errorf("%w: %q must map names to numbers: %v", ErrInvalidConfig, key, err)
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad(string(v))
	}
	var out []Pattern
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		var num json.Number
		if err := dec.Decode(&num); err != nil {
			return nil, bad(err)
		}
		f, err := num.Float64()
		if err != nil {
			return nil, bad(err)
		}
		out = append(out, Pattern{Key: k.(string), Value: f})
	}
	return out, nil
}

// pyFloat marshals like Python's json.dumps (float repr): the shortest
// round-trip digits, positional for exponents -4..15 with ".0" when
// integral, else scientific with a two-digit exponent.
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil, fmt.Errorf("%w: %v cannot be written", ErrInvalidConfig, x)
	}
	e := strconv.FormatFloat(x, 'e', -1, 64)
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return []byte(e), nil
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return []byte(s), nil
}

// peftDefaults are the keys PEFT 0.21's LoraConfig writes that ftune does
// not type, with their default values. Writing all of them makes PEFT load
// the file with no "unexpected/missing keyword" warning.
var peftDefaults = map[string]string{
	"alora_invocation_tokens": "null", "arrow_config": "null", "auto_mapping": "null",
	"corda_config": "null", "ensure_weight_tying": "false", "eva_config": "null",
	"kasa_config": "null", "layer_replication": "null", "loftq_config": "{}",
	"lora_ga_config": "null", "megatron_config": "null", "megatron_core": `"megatron.core"`,
	"monteclora_config": "null", "qalora_group_size": "16", "revision": "null",
	"target_parameters": "null", "trainable_token_indices": "null", "use_bdlora": "null",
	"use_qalora": "false", "velora_config": "null",
}

// JSON encodes the config as PEFT's save_pretrained does: every LoraConfig
// key, sorted, indented by two spaces, no trailing newline. Keys read from a
// file and not typed here are written back unchanged.
func (c *Config) JSON() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for k, v := range peftDefaults {
		out[k] = json.RawMessage(v)
	}
	for k, v := range c.extra {
		out[k] = v
	}
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	patterns := func(ps []Pattern, asInt bool) map[string]any {
		m := map[string]any{}
		for _, p := range ps {
			if asInt || p.Value == math.Trunc(p.Value) {
				m[p.Key] = int64(p.Value)
			} else {
				m[p.Key] = pyFloat(p.Value)
			}
		}
		return m
	}
	var alpha any = pyFloat(c.LoraAlpha)
	if c.LoraAlpha == math.Trunc(c.LoraAlpha) && math.Abs(c.LoraAlpha) < 1<<53 {
		alpha = int64(c.LoraAlpha) // PEFT declares lora_alpha an int
	}
	var layers any
	if c.LayersToTransform != nil {
		layers = c.LayersToTransform
	}
	var layersPattern any
	if c.LayersPattern != nil {
		layersPattern = c.LayersPattern
	}
	var toSave any
	if c.ModulesToSave != nil {
		toSave = c.ModulesToSave
	}
	typed := map[string]any{
		"peft_type": c.PeftType, "task_type": nullable(c.TaskType),
		"base_model_name_or_path": nullable(c.BaseModelNameOrPath),
		"inference_mode":          c.InferenceMode, "peft_version": nullable(c.PeftVersion),
		"r": c.R, "lora_alpha": alpha, "lora_dropout": pyFloat(c.LoraDropout), "use_rslora": c.UseRSLoRA,
		"target_modules": c.TargetModules, "exclude_modules": c.ExcludeModules,
		"layers_to_transform": layers, "layers_pattern": layersPattern, "modules_to_save": toSave,
		"rank_pattern": patterns(c.RankPattern, true), "alpha_pattern": patterns(c.AlphaPattern, false),
		"bias": c.Bias, "fan_in_fan_out": c.FanInFanOut, "use_dora": c.UseDoRA, "lora_bias": c.LoraBias,
		"init_lora_weights": c.InitLoraWeights,
	}
	for k, v := range typed {
		out[k] = v
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // Python's json.dumps does not escape <, >, &
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encode adapter config: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
