package nn

import (
	"math"

	"github.com/ftune/ftune/tensor"
)

// InvFreq returns the rotary inverse frequencies (head_dim/2 of them) and
// the attention scaling that multiplies cos and sin, as transformers'
// ROPE_INIT_FUNCTIONS compute them for the configured type. seqLen matters
// only for dynamic NTK scaling, which grows the base past the original
// context.
func (c Config) InvFreq(seqLen int) (inv []float64, attnScale float64) {
	r := c.Rope
	d := c.HeadDim
	base := r.Theta
	if r.Type == "dynamic" && r.OriginalMaxPositions > 0 && seqLen > r.OriginalMaxPositions {
		s := r.Factor*float64(seqLen)/float64(r.OriginalMaxPositions) - (r.Factor - 1)
		base *= math.Pow(s, float64(d)/float64(d-2))
	}
	inv = make([]float64, d/2)
	for i := range inv {
		// transformers computes base ** (arange(0, d, 2).float() / d) in
		// float32; rounding each step the same way keeps parity at 1e-7.
		e := float32(2*i) / float32(d)
		inv[i] = float64(float32(1 / math.Pow(base, float64(e))))
	}
	attnScale = 1
	switch r.Type {
	case "linear":
		for i := range inv {
			inv[i] /= r.Factor
		}
	case "llama3":
		old := float64(r.OriginalMaxPositions)
		lowWave, highWave := old/r.LowFreqFactor, old/r.HighFreqFactor
		for i, f := range inv {
			wave := 2 * math.Pi / f
			switch {
			case wave > lowWave:
				inv[i] = f / r.Factor
			case wave >= highWave:
				smooth := (old/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				inv[i] = (1-smooth)*f/r.Factor + smooth*f
			}
		}
	case "yarn":
		inv, attnScale = yarn(c, base)
	}
	return inv, attnScale
}

func yarnMscale(scale, m float64) float64 {
	if scale <= 1 {
		return 1
	}
	if m == 0 {
		m = 1
	}
	return 0.1*m*math.Log(scale) + 1
}

// yarn follows transformers' _compute_yarn_parameters: frequencies below
// the correction range are interpolated (divided by the factor), above it
// extrapolated (kept), with a linear ramp between.
func yarn(c Config, base float64) ([]float64, float64) {
	r := c.Rope
	d := float64(c.HeadDim)
	attn := r.AttentionFactor
	if attn == 0 {
		if r.Mscale != 0 && r.MscaleAllDim != 0 {
			attn = yarnMscale(r.Factor, r.Mscale) / yarnMscale(r.Factor, r.MscaleAllDim)
		} else {
			attn = yarnMscale(r.Factor, 1)
		}
	}
	orig := float64(r.OriginalMaxPositions)
	corr := func(rot float64) float64 {
		return d * math.Log(orig/(rot*2*math.Pi)) / (2 * math.Log(base))
	}
	low := math.Max(math.Floor(corr(r.BetaFast)), 0)
	high := math.Min(math.Ceil(corr(r.BetaSlow)), d-1)
	if low == high {
		high += 0.001
	}
	inv := make([]float64, c.HeadDim/2)
	for i := range inv {
		posFreq := math.Pow(base, float64(2*i)/d)
		extra, inter := 1/posFreq, 1/(r.Factor*posFreq)
		ramp := math.Min(math.Max((float64(i)-low)/(high-low), 0), 1)
		extraFactor := 1 - ramp
		inv[i] = inter*(1-extraFactor) + extra*extraFactor
	}
	return inv, attn
}

// RopeTables returns cos and sin [B,T,D/2] for position ids [B,T], in the
// compute dtype. Angles are formed in float32 as transformers does
// (inv_freq float32 times the position), then cos/sin taken exactly.
func (c Config) RopeTables(b tensor.Backend, dt tensor.DType, positions []int, B, T int) (cos, sin *tensor.Tensor) {
	maxPos := 0
	for _, p := range positions {
		maxPos = max(maxPos, p+1)
	}
	inv, scale := c.InvFreq(maxPos)
	half := len(inv)
	cs := make([]float64, B*T*half)
	sn := make([]float64, B*T*half)
	for i, p := range positions {
		for j, f := range inv {
			ang := float64(float32(p) * float32(f))
			cs[i*half+j] = math.Cos(ang) * scale
			sn[i*half+j] = math.Sin(ang) * scale
		}
	}
	cos = tensor.FromHost(b, tensor.F64, cs, B, T, half).To(dt)
	sin = tensor.FromHost(b, tensor.F64, sn, B, T, half).To(dt)
	return cos, sin
}
