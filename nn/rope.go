package nn

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/ftune/ftune/tensor"
)

// parseRope applies transformers v5's RoPE standardisation
// (RotaryEmbeddingConfigMixin.convert_rope_params_to_dict and
// standardize_rope_params): a non-empty v4 rope_scaling wins over
// rope_parameters; rope_theta inside the object wins over the top-level
// one (default defaultTheta, the config class's default_theta, or 10000 when
// 0); "type" is the v4 spelling of "rope_type"; for llama3,
// yarn and longrope the pretraining length is a top-level
// original_max_position_embeddings if config.json has one, else the
// object's, else max_position_embeddings. Keys each type requires are
// checked as transformers' _check_received_keys does (a missing one is an
// error there too).
func (c *Config) parseRope(r rawConfig, defaultTheta float64) error {
	raw, key := r.RopeParameters, "rope_parameters"
	if nonEmptyObject(r.RopeScaling) {
		raw, key = r.RopeScaling, "rope_scaling"
	}
	var src rawRope
	if len(raw) > 0 && string(raw) != "null" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("nn: config.json: %s: want an object: %v", key, err)
		}
		if len(m) > 0 && allObjects(m) {
			// {"full_attention": {...}, "sliding_attention": {...}}: the
			// per-layer-type layout of hybrid models. LlamaConfig would read
			// it as one global dict of unknown keys and Qwen2's rotary
			// embedding fails on it, so no family here runs it.
			return fmt.Errorf("%w: %s holds one RoPE setting per layer type (keys %v); llama, mistral, qwen2 and qwen3 take a single one", ErrUnsupported, key, sortedKeys(m))
		}
		if err := json.Unmarshal(raw, &src); err != nil {
			return fmt.Errorf("nn: config.json: %s: %v", key, err)
		}
	}
	rc := RopeConfig{Theta: 10000, Type: "default", Truncate: true}
	if defaultTheta != 0 {
		rc.Theta = defaultTheta
	}
	if r.RopeTheta != nil {
		rc.Theta = *r.RopeTheta
	}
	if src.RopeTheta != nil {
		rc.Theta = *src.RopeTheta
	}
	switch {
	case src.RopeType != nil:
		rc.Type = *src.RopeType
	case src.Type != nil:
		rc.Type = *src.Type
	}
	phiOrig := 0
	if c.ModelType == "phi3" {
		var err error
		if rc.Type, phiOrig, err = phi3Rope(rc.Type, r); err != nil {
			return err
		}
	}
	need := func(p *float64, name string) (float64, error) {
		if p == nil {
			return 0, fmt.Errorf("nn: config.json: %s: rope_type %q requires %q", key, rc.Type, name)
		}
		return *p, nil
	}
	origMax := func() int {
		switch {
		case phiOrig > 0:
			return phiOrig
		case r.OrigMaxPositions != nil:
			return int(*r.OrigMaxPositions)
		case src.OriginalMaxPositionEmbeddings != nil:
			return int(*src.OriginalMaxPositionEmbeddings)
		}
		return c.MaxPositions
	}
	// partial_rotary_factor: standardize_rope_params sets the top-level
	// value over one inside the RoPE object.
	partial := 1.0
	if src.PartialRotaryFactor != nil {
		partial = *src.PartialRotaryFactor
	}
	if r.PartialRotaryFactor != nil {
		partial = *r.PartialRotaryFactor
	}
	if c.ModelType == "phi3" {
		// Phi-3's rotary embedding reads it for default and longrope alike
		// (Phi-4-mini: 0.75); the other families' attention cannot apply it.
		if !(partial > 0 && partial <= 1) {
			return fmt.Errorf("nn: config.json: partial_rotary_factor must be in (0, 1], got %g", partial)
		}
		c.PartialRotary = partial
	}
	var err error
	switch rc.Type {
	case "default":
		// partial_rotary_factor is not read by the default init of the
		// other families, so it is ignored there as in transformers.
		c.Rope = rc
		return rc.validate(c.RotaryDim(), c.HeadDim, "rope_theta")
	case "linear", "dynamic":
		rc.Factor, err = need(src.Factor, "factor")
	case "llama3":
		if rc.Factor, err = need(src.Factor, "factor"); err != nil {
			return err
		}
		if rc.LowFreqFactor, err = need(src.LowFreqFactor, "low_freq_factor"); err != nil {
			return err
		}
		rc.HighFreqFactor, err = need(src.HighFreqFactor, "high_freq_factor")
		rc.OriginalMaxPositions = origMax()
	case "yarn":
		rc.OriginalMaxPositions = origMax()
		if src.Factor != nil {
			rc.Factor = *src.Factor
		} else if rc.OriginalMaxPositions > 0 {
			// _compute_yarn_parameters: factor None -> post-yarn / pre-yarn length
			rc.Factor = float64(c.MaxPositions) / float64(rc.OriginalMaxPositions)
		}
		rc.BetaFast, rc.BetaSlow = 32, 1 // `or 32`, `or 1`: null and 0 both mean the default
		if src.BetaFast != nil && *src.BetaFast != 0 {
			rc.BetaFast = *src.BetaFast
		}
		if src.BetaSlow != nil && *src.BetaSlow != 0 {
			rc.BetaSlow = *src.BetaSlow
		}
		if src.AttentionFactor != nil {
			if *src.AttentionFactor <= 0 {
				return fmt.Errorf("nn: config.json: %s: attention_factor must be > 0, got %g", key, *src.AttentionFactor)
			}
			rc.AttentionFactor = *src.AttentionFactor
		}
		if src.Mscale != nil {
			rc.Mscale = *src.Mscale
		}
		if src.MscaleAllDim != nil {
			rc.MscaleAllDim = *src.MscaleAllDim
		}
		if src.Truncate != nil {
			rc.Truncate = *src.Truncate
		}
	case "longrope":
		rc.OriginalMaxPositions = origMax()
		if src.ShortFactor == nil || src.LongFactor == nil {
			return fmt.Errorf("nn: config.json: %s: rope_type \"longrope\" requires \"short_factor\" and \"long_factor\"", key)
		}
		rc.ShortFactor, rc.LongFactor = src.ShortFactor, src.LongFactor
		if src.Factor != nil {
			rc.Factor = *src.Factor
		} else if rc.OriginalMaxPositions > 0 {
			rc.Factor = float64(c.MaxPositions) / float64(rc.OriginalMaxPositions)
		}
		if src.AttentionFactor != nil {
			rc.AttentionFactor = *src.AttentionFactor
		}
	default:
		return fmt.Errorf("%w: %s rope_type %q (want default, linear, dynamic, yarn, longrope or llama3)", ErrUnsupported, key, rc.Type)
	}
	if err != nil {
		return err
	}
	// The scaled inits build head_dim*partial_rotary_factor frequencies,
	// which the other families' apply_rotary_pos_emb cannot broadcast.
	if partial != 1 && c.ModelType != "phi3" {
		return fmt.Errorf("%w: partial_rotary_factor %g with rope_type %q", ErrUnsupported, partial, rc.Type)
	}
	c.Rope = rc
	return rc.validate(c.RotaryDim(), c.HeadDim, "rope_theta")
}

// validate rejects values that would divide by zero or index out of range;
// dim is the number of rotated dimensions per head (head_dim, or less with
// a partial rotary factor), thetaKey the config.json key of the base
// (rope_theta, or Gemma 3's rope_local_base_freq). The frequencies are
// computed in float32, as transformers computes them, so the base and the
// factor must be numbers there too: rope_theta 1e-300 passes a float64
// "> 0" but is 0 in float32, and every rotation angle becomes NaN.
// Config.checkRopeFrequencies then checks what they give.
func (r RopeConfig) validate(dim, headDim int, thetaKey string) error {
	if !(r.Theta > 0) {
		return fmt.Errorf("nn: config.json: %s must be > 0, got %g", thetaKey, r.Theta)
	}
	if err := float32Usable(thetaKey, r.Theta); err != nil {
		return err
	}
	switch r.Type {
	case "linear", "dynamic", "yarn", "llama3", "longrope":
		if !(r.Factor > 0) {
			return fmt.Errorf("nn: config.json: rope %s: factor must be > 0, got %g", r.Type, r.Factor)
		}
		if err := float32Usable("rope "+r.Type+": factor", r.Factor); err != nil {
			return err
		}
	}
	switch r.Type {
	case "yarn", "llama3", "longrope":
		if r.OriginalMaxPositions <= 0 {
			return fmt.Errorf("nn: config.json: rope %s: original_max_position_embeddings must be > 0, got %d", r.Type, r.OriginalMaxPositions)
		}
	}
	if r.Type == "llama3" && r.HighFreqFactor == r.LowFreqFactor {
		return fmt.Errorf("nn: config.json: rope llama3: high_freq_factor and low_freq_factor are both %g (the smoothing divides by their difference)", r.LowFreqFactor)
	}
	if r.Type == "longrope" && (len(r.ShortFactor) != dim/2 || len(r.LongFactor) != dim/2) {
		return fmt.Errorf("nn: config.json: rope longrope: short_factor has %d and long_factor %d entries, want one per rotated pair: %s = %d",
			len(r.ShortFactor), len(r.LongFactor), rotatedPairs(dim, headDim), dim/2)
	}
	return nil
}

// float32Usable refuses a positive RoPE parameter that float32, where the
// frequencies are computed, rounds to 0 or to +Inf.
func float32Usable(key string, v float64) error {
	x := float64(float32(v))
	if x != 0 && !math.IsInf(x, 0) {
		return nil
	}
	return fmt.Errorf("nn: config.json: %s %g is %g in float32, in which the RoPE frequencies are computed (as in transformers); want a value from %.2g to %.2g",
		key, v, x, math.SmallestNonzeroFloat32, math.MaxFloat32)
}

// ropeAngleLimit is the largest position whose rotation angles
// checkRopeFrequencies requires to be finite: no context is longer
// (maxDim bounds max_position_embeddings, and training past it).
const ropeAngleLimit = maxDim

// checkRopeFrequencies computes the inverse frequencies and the cos/sin
// scaling of r as the forward pass does (InvFreq: the initial ones, and
// longrope's long ones) and refuses any that is NaN, infinite or zero, or
// whose angle at position ropeAngleLimit overflows float32: values
// validate lets through can still combine into these (yarn's correction
// range divides by ln rope_theta, NaN at 1; a longrope factor of 0; a
// base so small that its frequencies reach 1e33; an attention_factor that
// is +Inf in float32), and a NaN there would only show as non-finite
// logits blamed on the weights. Real models' frequencies lie between
// about 1e-10 (rope_theta 3.6e9) and a few units (a linear factor below
// 1), their scaling near 1: far inside these bounds.
func (c Config) checkRopeFrequencies(r RopeConfig, thetaKey string) error {
	cc := c
	cc.Rope = r
	seqLens := []int{0}
	if r.Type == "longrope" {
		seqLens = append(seqLens, r.OriginalMaxPositions+1) // the long factors
	}
	for _, n := range seqLens {
		inv, scale := cc.InvFreq(n)
		which := ""
		if n > 0 {
			which = " (with the long factors, past original_max_position_embeddings)"
		}
		for i, f := range inv {
			angle := float64(float32(ropeAngleLimit) * float32(f))
			if f != 0 && !math.IsNaN(f) && !math.IsInf(angle, 0) {
				continue
			}
			what := fmt.Sprintf("is %g", f)
			switch {
			case f == 0:
				what = "is 0: that pair would never rotate"
			case !math.IsNaN(f) && !math.IsInf(f, 0):
				what = fmt.Sprintf("is %.3g: its rotation angle overflows float32 by position %d", f, ropeAngleLimit)
			}
			return fmt.Errorf("nn: config.json: RoPE from %s: inverse frequency %d of %d%s %s (the frequencies are computed in float32, as in transformers); these values make no usable rotation",
				r.keys(thetaKey), i, len(inv), which, what)
		}
		if s := float64(float32(scale)); s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return fmt.Errorf("nn: config.json: RoPE from %s: the cos/sin scaling (attention factor) they give is %g, %g in float32; want a finite number other than 0",
				r.keys(thetaKey), scale, s)
		}
	}
	return nil
}

// keys names the config.json values r's frequencies are computed from.
func (r RopeConfig) keys(thetaKey string) string {
	theta := fmt.Sprintf("%s %g", thetaKey, r.Theta)
	switch r.Type {
	case "linear", "dynamic":
		return fmt.Sprintf("rope_type %s, %s, factor %g", r.Type, theta, r.Factor)
	case "yarn":
		return fmt.Sprintf("rope_type yarn, %s, factor %g, beta_fast %g, beta_slow %g, original_max_position_embeddings %d, attention_factor %g, mscale %g, mscale_all_dim %g",
			theta, r.Factor, r.BetaFast, r.BetaSlow, r.OriginalMaxPositions, r.AttentionFactor, r.Mscale, r.MscaleAllDim)
	case "llama3":
		return fmt.Sprintf("rope_type llama3, %s, factor %g, low_freq_factor %g, high_freq_factor %g, original_max_position_embeddings %d",
			theta, r.Factor, r.LowFreqFactor, r.HighFreqFactor, r.OriginalMaxPositions)
	case "longrope":
		return fmt.Sprintf("rope_type longrope, %s, short_factor, long_factor, factor %g, attention_factor %g", theta, r.Factor, r.AttentionFactor)
	}
	return theta
}

// rotatedPairs names the count of rotated pairs in an error message.
func rotatedPairs(dim, headDim int) string {
	if dim == headDim {
		return "head_dim/2"
	}
	return "head_dim × partial_rotary_factor / 2"
}

// nonEmptyObject is Python's truthiness of a decoded dict: null and {} are
// false.
func nonEmptyObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return len(raw) > 0 && json.Unmarshal(raw, &m) == nil && len(m) > 0
}

func allObjects(m map[string]json.RawMessage) bool {
	for _, v := range m {
		var o map[string]json.RawMessage
		if json.Unmarshal(v, &o) != nil || o == nil {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The functions below follow transformers' ROPE_INIT_FUNCTIONS
// (modeling_rope_utils.py) and the rotary embedding forward of the llama,
// mistral and qwen2 models. torch computes the frequencies in float32, one
// rounding per tensor op; each op is rounded the same way here (float32
// arithmetic in Go rounds like torch's CPU kernels, and a Python scalar
// meeting a float32 tensor is first rounded to float32), so the values match
// transformers' inv_freq buffers to the last bit or one ulp of pow. Python
// scalar arithmetic (the YaRN correction range, the Llama-3 wavelength
// bounds, attention factors) stays in float64, as in Python.

// InvFreq returns the rotary inverse frequencies (head_dim/2 of them) and
// the attention scaling that multiplies cos and sin. seqLen is the seq_len
// transformers hands the init function: the largest position id + 1 of the
// current forward pass. Only dynamic NTK (which grows the base past
// max_position_embeddings) and longrope (long factors past the original
// length) read it; 0 gives the frequencies a freshly built model holds.
func (c Config) InvFreq(seqLen int) (inv []float64, attnScale float64) {
	r := c.Rope
	d := c.RotaryDim()
	var f []float32
	attnScale = 1
	switch r.Type {
	case "linear":
		// _compute_linear_scaling_rope_parameters: default, then inv_freq /= factor.
		f = defaultInvFreq(float32(r.Theta), d)
		for i := range f {
			f[i] /= float32(r.Factor)
		}
	case "dynamic":
		f = dynamicInvFreq(c, seqLen)
	case "yarn":
		f, attnScale = yarnInvFreq(c)
	case "longrope":
		f, attnScale = longropeInvFreq(c, seqLen)
	case "llama3":
		f = llama3InvFreq(c)
	default:
		f = defaultInvFreq(float32(r.Theta), d)
	}
	inv = make([]float64, len(f))
	for i, v := range f {
		inv[i] = float64(v)
	}
	return inv, attnScale
}

// defaultInvFreq is 1.0 / (base ** (arange(0, dim, 2).float() / dim)): the
// exponent is a float32 division, pow is taken on the float32 base, and
// 1.0/x is torch's reciprocal.
func defaultInvFreq(base float32, dim int) []float32 {
	f := make([]float32, dim/2)
	for i := range f {
		f[i] = 1 / powf(base, ropeExponent(i, dim))
	}
	return f
}

func ropeExponent(i, dim int) float32 { return float32(2*i) / float32(dim) }

// powf is a float32 pow rounded once (torch's float pow is within an ulp).
func powf(base, exp float32) float32 {
	return float32(math.Pow(float64(base), float64(exp)))
}

// dynamicInvFreq is _compute_dynamic_ntk_parameters. It scales against
// max_position_embeddings (not original_max_position_embeddings, which
// transformers does not read for this type). At init (seq_len None) the
// Python arithmetic leaves the base unchanged; in the forward update seq_len
// is a tensor, so the new base is formed in float32.
func dynamicInvFreq(c Config, seqLen int) []float32 {
	r := c.Rope
	d := c.RotaryDim()
	if seqLen <= c.MaxPositions {
		return defaultInvFreq(float32(r.Theta), d)
	}
	fac := float32(r.Factor)
	s := float32(fac*float32(seqLen)) / float32(c.MaxPositions)
	s -= float32(r.Factor - 1)
	// tensor ** python float: the scalar kernel raises in double and rounds.
	s = float32(math.Pow(float64(s), float64(d)/float64(d-2)))
	base := float32(r.Theta) * s
	return defaultInvFreq(base, d)
}

// yarnMscale is get_mscale: 0.1·m·ln(scale) + 1 above scale 1.
func yarnMscale(scale, m float64) float64 {
	if scale <= 1 {
		return 1
	}
	return 0.1*m*math.Log(scale) + 1
}

// yarnAttentionFactor is the cos/sin scaling of _compute_yarn_parameters:
// attention_factor when given, else mscale/mscale_all_dim when both are
// set (truthy), else get_mscale(factor).
func yarnAttentionFactor(r RopeConfig) float64 {
	switch {
	case r.AttentionFactor != 0:
		return r.AttentionFactor
	case r.Mscale != 0 && r.MscaleAllDim != 0:
		return yarnMscale(r.Factor, r.Mscale) / yarnMscale(r.Factor, r.MscaleAllDim)
	}
	return yarnMscale(r.Factor, 1)
}

// yarnCorrectionRange is find_correction_range over
// original_max_position_embeddings: the dimensions whose wavelengths make
// beta_fast and beta_slow turns over the pretraining length, floored and
// ceiled when truncate (the default), clamped to [0, dim-1].
func yarnCorrectionRange(r RopeConfig, dim int) (low, high float64) {
	d := float64(dim)
	corr := func(rot float64) float64 {
		return d * math.Log(float64(r.OriginalMaxPositions)/(rot*2*math.Pi)) / (2 * math.Log(r.Theta))
	}
	low, high = corr(r.BetaFast), corr(r.BetaSlow)
	if r.Truncate {
		low, high = math.Floor(low), math.Ceil(high)
	}
	return math.Max(low, 0), math.Min(high, d-1)
}

// yarnInvFreq blends interpolated (divided by factor) and extrapolated
// (unchanged) frequencies with a linear ramp over the correction range.
func yarnInvFreq(c Config) ([]float32, float64) {
	r := c.Rope
	d := c.RotaryDim()
	low, high := yarnCorrectionRange(r, d)
	if low == high {
		high += 0.001 // linear_ramp_factor's guard against a zero-width ramp
	}
	lo32, width32 := float32(low), float32(high-low)
	f := make([]float32, d/2)
	for i := range f {
		pos := powf(float32(r.Theta), ropeExponent(i, d))
		extra := 1 / pos
		inter := 1 / (float32(r.Factor) * pos)
		ramp := (float32(i) - lo32) / width32
		ramp = min(max(ramp, 0), 1)
		ef := 1 - ramp // inv_freq_extrapolation_factor
		// The conversions keep arm64 from fusing these into an FMA.
		f[i] = float32(inter*(1-ef)) + float32(extra*ef)
	}
	return f, yarnAttentionFactor(r)
}

// longropeInvFreq is _compute_longrope_parameters: per-dimension divisors,
// the long ones once seq_len passes the pretraining length; the attention
// factor is sqrt(1 + ln(factor)/ln(original)) unless given, with factor the
// rope object's "factor" or else max_position_embeddings / original.
//
// Which factors apply: transformers 5.x (dynamic_rope_update's
// longrope_frequency_update) takes seq_len = max(position_ids) + 1 of each
// forward pass and uses the long factors when it exceeds
// original_max_position_embeddings, the short ones otherwise (the
// attention factor does not change). ftune does the same per pass
// (RopeTablesAt with the pass's largest position + 1; RopeState.Step passes
// it through for longrope). In generation, keys cached on the short factors
// would keep that rotation past the crossing; Phi3ForCausalLM instead drops
// the cache there and recomputes the whole sequence on the long factors,
// and so does Generate (see LongRopeRecompute). llama.cpp
// differs: it picks once per context, long when n_ctx exceeds the original
// length (llama_model::get_rope_factors), whatever the positions; see
// parity/phi3llamacpp_test.go for where the two agree.
func longropeInvFreq(c Config, seqLen int) ([]float32, float64) {
	r := c.Rope
	d := c.RotaryDim()
	ext := r.ShortFactor
	if seqLen > r.OriginalMaxPositions {
		ext = r.LongFactor
	}
	f := make([]float32, d/2)
	for i := range f {
		f[i] = 1 / (float32(ext[i]) * powf(float32(r.Theta), ropeExponent(i, d)))
	}
	attn := r.AttentionFactor
	if attn == 0 {
		attn = 1
		if r.Factor > 1 {
			attn = math.Sqrt(1 + math.Log(r.Factor)/math.Log(float64(r.OriginalMaxPositions)))
		}
	}
	return f, attn
}

// LongRopeRecompute reports whether a decoding step that holds past cached
// positions and brings the sequence to total tokens must drop the cache and
// run the whole sequence again, as Phi3ForCausalLM.prepare_inputs_for_generation
// does: with longrope, the first time the sequence reaches
// original_max_position_embeddings + 1 tokens while the cache holds no more
// than original_max_position_embeddings positions (keys rotated with the
// short factors). The recomputed pass has seq_len > original, so every key
// is then rotated with the long factors, as a forward without a cache
// over the same sequence rotates them.
func (c Config) LongRopeRecompute(past, total int) bool {
	o := c.Rope.OriginalMaxPositions
	return c.Rope.Type == "longrope" && past > 0 && past <= o && total >= o+1
}

// llama3InvFreq is _compute_llama3_parameters: wavelengths longer than
// original/low_freq_factor are divided by factor, shorter than
// original/high_freq_factor kept, and the band between blended. 2π/inv is
// torch's reciprocal times 2π; a/b with a Python scalar a likewise.
func llama3InvFreq(c Config) []float32 {
	r := c.Rope
	f := defaultInvFreq(float32(r.Theta), c.RotaryDim())
	old := float64(r.OriginalMaxPositions)
	lowWave := float32(old / r.LowFreqFactor)
	highWave := float32(old / r.HighFreqFactor)
	fac := float32(r.Factor)
	for i, inv := range f {
		wave := (1 / inv) * float32(2*math.Pi)
		scaled := inv
		if wave > lowWave {
			scaled = inv / fac
		}
		smooth := (float32((1/wave)*float32(old)) - float32(r.LowFreqFactor)) / float32(r.HighFreqFactor-r.LowFreqFactor)
		blended := float32((1-smooth)*scaled)/fac + float32(smooth*scaled)
		if !(wave < highWave) && !(wave > lowWave) {
			scaled = blended
		}
		f[i] = scaled
	}
	return f
}

// RopeState carries what transformers' dynamic_rope_update keeps between
// forward passes of one model for dynamic NTK: the frequencies are
// recomputed only when a pass reaches past the longest length seen so far
// (max_seq_len_cached) and are reset to the original ones when a pass is
// shorter than max_position_embeddings after a longer one. A pass of a
// length in between therefore reuses the longest length's frequencies. The
// zero value is a freshly built model.
type RopeState struct {
	cached int // max_seq_len_cached; 0 = max_position_embeddings
	seqLen int // the seq_len inv_freq was last computed for; 0 = init
}

// Step records a forward pass whose largest position id is seqLen-1 and
// returns the seqLen to give InvFreq / RopeTablesAt for it.
func (s *RopeState) Step(c Config, seqLen int) int {
	if c.Rope.Type != "dynamic" {
		return seqLen // every other type is a function of this pass alone
	}
	orig := c.MaxPositions
	if s.cached == 0 {
		s.cached = orig
	}
	before := s.cached
	if seqLen > before { // growth
		s.seqLen, s.cached = seqLen, seqLen
	}
	if seqLen < orig && before > orig { // reset
		s.seqLen, s.cached = 0, orig
	}
	return s.seqLen
}

// RopeTables returns cos and sin [B,T,D/2] for position ids [B,T] in the
// compute dtype, with the frequencies for this pass alone (seq_len = the
// largest position + 1).
func (c Config) RopeTables(b tensor.Backend, dt tensor.DType, positions []int, B, T int) (cos, sin *tensor.Tensor) {
	maxPos := 0
	for _, p := range positions {
		maxPos = max(maxPos, p+1)
	}
	return c.RopeTablesAt(b, dt, positions, B, T, maxPos)
}

// RopeTablesAt is RopeTables with the frequencies of InvFreq(seqLen)
// (see RopeState). Angles are formed as transformers does, inv_freq
// (float32) times the position in float32; cos and sin are then taken and
// multiplied by the attention scaling (YaRN, longrope), both of them.
func (c Config) RopeTablesAt(b tensor.Backend, dt tensor.DType, positions []int, B, T, seqLen int) (cos, sin *tensor.Tensor) {
	var rows ropeRows
	return rows.tables(c, b, dt, positions, B, T, seqLen)
}

// ropeRows holds cos and sin of the angles of positions 0..n−1 for one set
// of frequencies, so that a pass's [B,T,D/2] tables are gathered from them:
// the trigonometry is done once per position, not once per token of every
// row, and a model keeps its rows across passes (Model.ropeRows). At
// SmolLM2's head size a batch of 8 × 2048 took 25 ms of host time computed
// token by token, at the start of every step, while a GPU waits for the
// step's first kernels (BenchmarkRopeTables).
type ropeRows struct {
	inv   []float64 // the frequencies and scaling the rows are for
	scale float64
	// f64: the rows are kept in float64 (a float64 model), else rounded
	// to float32, the tables' host dtype for every other compute dtype.
	f64          bool
	n            int       // positions 0..n-1 are held
	cos, sin     []float64 // [n, len(inv)] when f64
	cos32, sin32 []float32 // [n, len(inv)] otherwise
}

// ropeCache is a Model's ropeRows: [0] the global frequencies, [1] Gemma
// 3's local ones.
type ropeCache struct {
	mu   sync.Mutex
	rows [2]ropeRows
}

// tables returns the pass's cos and sin [B,T,D/2] in dt, computing the
// rows it lacks first (all of them again when InvFreq(seqLen) differs
// from the frequencies they were computed for).
func (r *ropeRows) tables(c Config, b tensor.Backend, dt tensor.DType, positions []int, B, T, seqLen int) (cos, sin *tensor.Tensor) {
	inv, scale := c.InvFreq(seqLen)
	f64 := dt == tensor.F64
	if scale != r.scale || !slices.Equal(inv, r.inv) || f64 != r.f64 {
		*r = ropeRows{inv: inv, scale: scale, f64: f64}
	}
	maxPos, neg := 0, false
	for _, p := range positions {
		maxPos, neg = max(maxPos, p+1), neg || p < 0
	}
	if neg || maxPos > ropeRowsMax {
		// Positions no table should hold: each token's own angles.
		one := ropeRows{inv: inv, scale: scale, f64: f64}
		one.append(positions...)
		idx := make([]int, len(positions))
		for i := range idx {
			idx[i] = i
		}
		return one.upload(b, dt, idx, B, T)
	}
	for p := r.n; p < maxPos; p++ {
		r.append(p)
	}
	return r.upload(b, dt, positions, B, T)
}

// ropeRowsMax bounds the positions a ropeRows holds (2¹⁸, 262,144: at
// Gemma's head size of 256, 256 MiB of float32 rows, about what one pass
// of that length gathers anyway); larger or negative ones are computed
// token by token.
const ropeRowsMax = 1 << 18

// append adds the rows of positions ps.
func (r *ropeRows) append(ps ...int) {
	for _, p := range ps {
		for _, f := range r.inv {
			ang := float64(float32(p) * float32(f))
			c, s := math.Cos(ang)*r.scale, math.Sin(ang)*r.scale
			if r.f64 {
				r.cos, r.sin = append(r.cos, c), append(r.sin, s)
			} else {
				r.cos32, r.sin32 = append(r.cos32, float32(c)), append(r.sin32, float32(s))
			}
		}
		r.n++
	}
}

// upload gathers the rows of positions into cos and sin [B,T,half] in the
// compute dtype dt (from float32 on the host unless dt is F64, so no
// backend needs float64 storage for them).
func (r *ropeRows) upload(b tensor.Backend, dt tensor.DType, positions []int, B, T int) (cos, sin *tensor.Tensor) {
	half := len(r.inv)
	if r.f64 {
		return tensor.FromHost(b, tensor.F64, gatherRows(r.cos, positions, half), B, T, half),
			tensor.FromHost(b, tensor.F64, gatherRows(r.sin, positions, half), B, T, half)
	}
	return castUploaded(tensor.FromHost(b, tensor.F32, gatherRows(r.cos32, positions, half), B, T, half), dt),
		castUploaded(tensor.FromHost(b, tensor.F32, gatherRows(r.sin32, positions, half), B, T, half), dt)
}

// castUploaded returns t in dt, giving t's storage back at once when the
// cast made a copy: nothing else holds it, and on a GPU it would otherwise
// wait for Go's collector.
func castUploaded(t *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	out := t.To(dt)
	if out != t {
		if err := tensor.Release(t); err != nil {
			panic(&tensor.Error{Err: fmt.Errorf("nn: RoPE table: %w", err)})
		}
	}
	return out
}

// gatherRows returns rows[positions[i]] for every i, each row half long.
func gatherRows[E float32 | float64](rows []E, positions []int, half int) []E {
	v := make([]E, len(positions)*half)
	for i, p := range positions {
		copy(v[i*half:(i+1)*half], rows[p*half:(p+1)*half])
	}
	return v
}
