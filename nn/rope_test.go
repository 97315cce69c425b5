package nn

import (
	"math"
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/backendtest"
)

// The expected frequencies here are computed independently in float64 from
// the formulas (RoFormer, arXiv:2104.09864: θ_i = base^(-2i/d); linear
// position interpolation, arXiv:2306.15595: θ_i/factor; dynamic NTK
// (bloc97/emozilla, as transformers' _compute_dynamic_ntk_parameters):
// base·(factor·L/L_max − (factor−1))^(d/(d−2)); YaRN, arXiv:2309.00071 §3,
// with transformers' find_correction_range and get_mscale; Llama 3.1's
// apply_scaling from meta-llama/llama-models; LongRoPE as
// transformers' _compute_longrope_parameters). InvFreq rounds like torch's
// float32 ops, so they differ from these float64 values by a few float32
// ulps: 1e-6 relative per element leaves ~5x margin over that and is far
// below any formula error (a wrong band or factor moves values by >1e-2).
const tolFreq = 1e-6

func ropeCfg(d, maxPos int, r RopeConfig) Config {
	if r.Type == "" {
		r.Type = "default"
	}
	return Config{HeadDim: d, MaxPositions: maxPos, Rope: r}
}

func checkFreqs(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d frequencies, want %d", what, len(got), len(want))
	}
	for i := range want {
		if e := math.Abs(got[i]-want[i]) / math.Abs(want[i]); !(e <= tolFreq) {
			t.Errorf("%s: inv_freq[%d] = %.9g, want %.9g (rel err %.2g)", what, i, got[i], want[i], e)
		}
	}
}

func checkScale(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("%s: attention scaling %.15g, want %.15g", what, got, want)
	}
}

// refDefault is θ_i = base^(-2i/d).
func refDefault(base float64, d int) []float64 {
	out := make([]float64, d/2)
	for i := range out {
		out[i] = math.Pow(base, -2*float64(i)/float64(d))
	}
	return out
}

func TestInvFreqDefaultAndLinear(t *testing.T) {
	// base 10000, d 8: 10000^(-i/4) = 10^-i, exactly representable targets.
	inv, s := ropeCfg(8, 128, RopeConfig{Theta: 10000}).InvFreq(0)
	checkFreqs(t, "default", inv, []float64{1, 0.1, 0.01, 0.001})
	checkScale(t, "default", s, 1)
	inv, s = ropeCfg(8, 128, RopeConfig{Theta: 10000, Type: "linear", Factor: 4}).InvFreq(500)
	checkFreqs(t, "linear", inv, []float64{0.25, 0.025, 0.0025, 0.00025})
	checkScale(t, "linear", s, 1)
	inv, _ = ropeCfg(64, 128, RopeConfig{Theta: 500000}).InvFreq(0)
	checkFreqs(t, "default d=64", inv, refDefault(500000, 64))
}

func TestInvFreqDynamic(t *testing.T) {
	c := ropeCfg(8, 16, RopeConfig{Theta: 10000, Type: "dynamic", Factor: 2})
	for _, L := range []int{0, 1, 16} { // at or below max_position_embeddings: unscaled
		inv, s := c.InvFreq(L)
		checkFreqs(t, "dynamic short", inv, refDefault(10000, 8))
		checkScale(t, "dynamic", s, 1)
	}
	// L=32: 2·32/16 − 1 = 3, base' = 10000·3^(8/6).
	inv, _ := c.InvFreq(32)
	checkFreqs(t, "dynamic L=32", inv, refDefault(10000*math.Pow(3, 4.0/3), 8))
	// original_max_position_embeddings is not what dynamic scales against.
	c.Rope.OriginalMaxPositions = 4
	inv, _ = c.InvFreq(16)
	checkFreqs(t, "dynamic ignores original_max_position_embeddings", inv, refDefault(10000, 8))
}

func TestInvFreqLlama3(t *testing.T) {
	// d 8, base 10000: wavelengths 2π·10^i = 6.28, 62.8, 628, 6283. With
	// original 1000, low 1, high 4 the bands are: < 250 kept, > 1000
	// divided by 8, between blended with s = (1000/λ − 1)/3.
	c := ropeCfg(8, 8192, RopeConfig{Theta: 10000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 1000})
	s := (1000/(2*math.Pi*100) - 1) / 3
	want := []float64{1, 0.1, (1-s)*0.01/8 + s*0.01, 0.001 / 8}
	inv, scale := c.InvFreq(0)
	checkFreqs(t, "llama3", inv, want)
	checkScale(t, "llama3", scale, 1)
	// Llama-3.1 8B settings, each band by its own rule (d 128, base 500000,
	// original 8192, low 1, high 4, factor 8).
	c = ropeCfg(128, 131072, RopeConfig{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192})
	inv, _ = c.InvFreq(0)
	ref := refDefault(500000, 128)
	bands := map[string]int{}
	for i, f := range ref {
		wave := 2 * math.Pi / f
		switch {
		case wave < 8192/4.0:
			bands["high"]++
		case wave > 8192:
			ref[i] = f / 8
			bands["low"]++
		default:
			sm := (8192/wave - 1) / 3
			ref[i] = (1-sm)*f/8 + sm*f
			bands["mid"]++
		}
	}
	checkFreqs(t, "llama3.1", inv, ref)
	if bands["high"] == 0 || bands["low"] == 0 || bands["mid"] == 0 {
		t.Fatalf("test does not cover every band: %v", bands)
	}
}

// refYarn recomputes _compute_yarn_parameters' ramp in float64.
func refYarn(base, factor float64, d, orig int, betaFast, betaSlow float64, truncate bool) []float64 {
	corr := func(rot float64) float64 {
		return float64(d) * math.Log(float64(orig)/(rot*2*math.Pi)) / (2 * math.Log(base))
	}
	lo, hi := corr(betaFast), corr(betaSlow)
	if truncate {
		lo, hi = math.Floor(lo), math.Ceil(hi)
	}
	lo, hi = math.Max(lo, 0), math.Min(hi, float64(d-1))
	if lo == hi {
		hi += 0.001
	}
	out := refDefault(base, d)
	for i, f := range out {
		ramp := math.Min(math.Max((float64(i)-lo)/(hi-lo), 0), 1)
		out[i] = f/factor*ramp + f*(1-ramp)
	}
	return out
}

func TestInvFreqYarn(t *testing.T) {
	// d 8, base 10000, original 64, factor 4: correction dims are
	// 8·ln(64/(32·2π))/(2 ln 10000) = −0.497 and 8·ln(64/2π)/(2 ln 10000) =
	// 1.008, truncated to [0, 2], so the ramp is 0, ½, 1, 1.
	r := RopeConfig{Theta: 10000, Type: "yarn", Factor: 4, OriginalMaxPositions: 64, BetaFast: 32, BetaSlow: 1, Truncate: true}
	inv, s := ropeCfg(8, 256, r).InvFreq(0)
	checkFreqs(t, "yarn by hand", inv, []float64{1, 0.5*0.1/4 + 0.5*0.1, 0.01 / 4, 0.001 / 4})
	checkScale(t, "yarn", s, 0.1*math.Log(4)+1)
	checkFreqs(t, "yarn formula", inv, refYarn(10000, 4, 8, 64, 32, 1, true))
	// truncate=false keeps the fractional range [0, 1.008].
	r.Truncate = false
	inv, _ = ropeCfg(8, 256, r).InvFreq(0)
	checkFreqs(t, "yarn untruncated", inv, refYarn(10000, 4, 8, 64, 32, 1, false))
	if math.Abs(inv[1]-0.0625) < 1e-3 {
		t.Errorf("truncate=false gave the truncated ramp (inv[1] = %g)", inv[1])
	}
	// Larger head, other betas.
	r = RopeConfig{Theta: 1e6, Type: "yarn", Factor: 16, OriginalMaxPositions: 4096, BetaFast: 16, BetaSlow: 2, Truncate: true}
	inv, _ = ropeCfg(128, 65536, r).InvFreq(0)
	checkFreqs(t, "yarn d=128", inv, refYarn(1e6, 16, 128, 4096, 16, 2, true))
}

func TestYarnAttentionFactor(t *testing.T) {
	m := func(s, k float64) float64 { return 0.1*k*math.Log(s) + 1 }
	for _, tc := range []struct {
		name string
		r    RopeConfig
		want float64
	}{
		{"from factor", RopeConfig{Factor: 8}, m(8, 1)},
		{"given", RopeConfig{Factor: 8, AttentionFactor: 0.75}, 0.75},
		{"mscale ratio", RopeConfig{Factor: 40, Mscale: 2, MscaleAllDim: 1}, m(40, 2) / m(40, 1)},
		{"equal mscales cancel", RopeConfig{Factor: 40, Mscale: 0.707, MscaleAllDim: 0.707}, 1},
		{"mscale alone is ignored", RopeConfig{Factor: 40, Mscale: 3}, m(40, 1)},
		{"factor 1", RopeConfig{Factor: 1}, 1},
	} {
		checkScale(t, tc.name, yarnAttentionFactor(tc.r), tc.want)
	}
}

func TestInvFreqLongrope(t *testing.T) {
	r := RopeConfig{Theta: 10000, Type: "longrope", Factor: 4, OriginalMaxPositions: 16,
		ShortFactor: []float64{1, 1, 1, 1}, LongFactor: []float64{1, 2, 4, 8}}
	c := ropeCfg(8, 64, r)
	short, s := c.InvFreq(16)
	checkFreqs(t, "longrope short", short, []float64{1, 0.1, 0.01, 0.001})
	checkScale(t, "longrope", s, math.Sqrt(1+math.Log(4)/math.Log(16)))
	long, _ := c.InvFreq(17)
	checkFreqs(t, "longrope long", long, []float64{1, 0.05, 0.0025, 0.000125})
}

func TestRopeStateFollowsDynamicUpdate(t *testing.T) {
	c := ropeCfg(8, 16, RopeConfig{Theta: 10000, Type: "dynamic", Factor: 2})
	var st RopeState
	// seq_len → the length inv_freq was computed for (0 = the init values).
	for i, step := range [][2]int{
		{8, 0},   // short: init frequencies
		{20, 20}, // growth
		{18, 20}, // within the cached length: reused, not recomputed
		{24, 24}, // growth
		{16, 24}, // not below max_position_embeddings: no reset
		{10, 0},  // reset
		{17, 17}, // growth again from the original length
	} {
		if got := st.Step(c, step[0]); got != step[1] {
			t.Fatalf("step %d (seq_len %d): frequencies of %d, want %d", i, step[0], got, step[1])
		}
	}
	c.Rope.Type = "llama3"
	if got := (&RopeState{}).Step(c, 99); got != 99 {
		t.Errorf("non-dynamic type: Step = %d, want the pass's own 99", got)
	}
}

func TestRopeTablesScaleCosAndSin(t *testing.T) {
	r := RopeConfig{Theta: 10000, Type: "yarn", Factor: 4, OriginalMaxPositions: 64, BetaFast: 32, BetaSlow: 1, Truncate: true}
	c := ropeCfg(8, 256, r)
	inv, scale := c.InvFreq(0)
	pos := []int{0, 3, 7, 1, 2, 100}
	cos, sin := c.RopeTables(tensor.CPUDefault(), tensor.F32, pos, 2, 3)
	if !cos.Shape().Equal([]int{2, 3, 4}) || !sin.Shape().Equal([]int{2, 3, 4}) {
		t.Fatalf("shapes %v %v, want [2 3 4]", cos.Shape(), sin.Shape())
	}
	cv, sv := cos.F64(), sin.F64()
	for i, p := range pos {
		for j, f := range inv {
			a := float64(float32(p) * float32(f))
			wc, ws := math.Cos(a)*scale, math.Sin(a)*scale
			if math.Abs(cv[i*4+j]-wc) > 1e-6 || math.Abs(sv[i*4+j]-ws) > 1e-6 {
				t.Fatalf("pos %d dim %d: cos %g sin %g, want %g %g (scaled by %g)", p, j, cv[i*4+j], sv[i*4+j], wc, ws, scale)
			}
		}
	}
}

// TestModelRelativePositions: RoPE makes attention depend on position
// differences only, so shifting every position id by the same amount keeps
// the logits (angles of larger positions round differently in float32,
// ~1e-6 rad here, hence 1e-4).
func TestModelRelativePositions(t *testing.T) {
	for _, name := range []string{"llama3", "v4_yarn", "tied"} {
		m := loadRandom(t, modelConfigs[name], 13)
		ids := tokens(14, 9, 48)
		base := logits(t, m, [][]int{ids}, nil)[0]
		flat := make([]int64, len(ids))
		pos := make([]int, len(ids))
		for i, v := range ids {
			flat[i], pos[i] = int64(v), i+7
		}
		out, err := m.Forward(nil, Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, flat, 1, 9), PositionIDs: pos}, ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, V := out.Logits.Value.F64(), m.Config.VocabSize
		for p := range base {
			if d := maxDiff(base[p], v[p*V:(p+1)*V]); d > 1e-4 {
				t.Errorf("%s: position %d moved by %.3g when every position id shifted by 7", name, p, d)
			}
		}
	}
}

// A model's RoPE rows, kept across passes, give bit for bit the tables of
// each token's own angles: passes of different lengths, packed positions
// that restart, frequencies that change between passes (longrope's short
// and long factors, dynamic NTK's growth), and positions no row table
// holds (negative, past ropeRowsMax), in float32 and float64.
func TestRopeRowsMatchEachTokensAngles(t *testing.T) {
	long := RopeConfig{Theta: 10000, Type: "longrope", OriginalMaxPositions: 16, Factor: 4,
		ShortFactor: []float64{1, 1.1, 1.3, 1.7}, LongFactor: []float64{2, 3, 5, 7}}
	dyn := RopeConfig{Theta: 10000, Type: "dynamic", Factor: 2}
	for _, tc := range []struct {
		name string
		c    Config
	}{{"default", ropeCfg(8, 64, RopeConfig{Theta: 10000, Type: "default"})}, {"longrope", ropeCfg(8, 64, long)}, {"dynamic", ropeCfg(8, 16, dyn)}} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			var rows ropeRows
			var state RopeState
			for pass, pos := range [][]int{
				{0, 1, 2, 3, 0, 1, 2, 3},             // two rows
				{0, 1, 2, 0, 1, 0, 1, 2},             // packed: positions restart
				{10, 11, 12, 13, 14, 15, 16, 17},     // past longrope's original 16
				{0, 1, 2, 3, 4, 5, 6, 7},             // back under it
				{-2, -1, 0, 1, ropeRowsMax, 3, 4, 5}, // no table holds them
				{30, 31, 32, 33, 0, 1, 2, 3},
			} {
				maxPos := 0
				for _, p := range pos {
					maxPos = max(maxPos, p+1)
				}
				seqLen := state.Step(tc.c, maxPos)
				cos, sin := rows.tables(tc.c, tensor.CPUDefault(), dt, pos, 2, 4, seqLen)
				inv, scale := tc.c.InvFreq(seqLen)
				cv, sv := cos.F64(), sin.F64()
				for i, p := range pos {
					for j, f := range inv {
						a := float64(float32(p) * float32(f))
						wc, ws := math.Cos(a)*scale, math.Sin(a)*scale
						if dt == tensor.F32 {
							wc, ws = float64(float32(wc)), float64(float32(ws))
						}
						if cv[i*len(inv)+j] != wc || sv[i*len(inv)+j] != ws {
							t.Fatalf("%s %v pass %d: position %d dim %d: cos %v sin %v, want %v %v", tc.name, dt, pass, p, j, cv[i*len(inv)+j], sv[i*len(inv)+j], wc, ws)
						}
					}
				}
			}
			if n := rows.n; n > 34 {
				t.Errorf("%s %v: %d rows kept, want at most the 34 positions used", tc.name, dt, n)
			}
		}
	}
	// Rows kept in float32 are not served to a float64 pass.
	c := ropeCfg(8, 64, RopeConfig{Theta: 10000, Type: "default"})
	var rows ropeRows
	pos := []int{0, 1, 2, 3}
	rows.tables(c, tensor.CPUDefault(), tensor.F32, pos, 1, 4, 4)
	cos, _ := rows.tables(c, tensor.CPUDefault(), tensor.F64, pos, 1, 4, 4)
	inv, _ := c.InvFreq(4)
	if got, want := cos.F64()[len(inv)+1], math.Cos(float64(float32(1)*float32(inv[1]))); got != want {
		t.Errorf("a float64 pass after a float32 one: cos %v, want %v", got, want)
	}
}

// The RoPE tables are gathered on the host in float32 and cast on the
// device to the model's precision; the float32 upload is dead then and
// goes back at once (on a GPU it would wait for Go's collector, two
// [B,T,D/2] float32 tables a pass). In float32 nothing is copied, and the
// upload is the table.
func TestRopeUploadCastGivesTheFloat32CopyBack(t *testing.T) {
	be := backendtest.NewCounting()
	up := tensor.FromHost(be, tensor.F32, []float32{0.5, -0.25, 1, 2}, 1, 2, 2)
	got := castUploaded(up, tensor.BF16)
	if got.DType() != tensor.BF16 || !be.Released(up) {
		t.Errorf("cast to bf16: %v, float32 upload released %v; want bf16 and released", got.DType(), be.Released(up))
	}
	if v := got.To(tensor.F32).F32(); v[0] != 0.5 || v[3] != 2 {
		t.Errorf("cast values %v, want 0.5 … 2", v)
	}
	same := tensor.FromHost(be, tensor.F32, []float32{1, 2}, 1, 1, 2)
	if castUploaded(same, tensor.F32) != same || be.Released(same) {
		t.Error("a float32 table was copied or released")
	}
}
