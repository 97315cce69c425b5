package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ftune/ftune/autograd"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/internal/tinymodels"
	"github.com/ftune/ftune/tensor"
)

// phiFactors is a JSON list of n LongRoPE factors, i+1 each (the hub files
// list 48 measured values; their count is what config parsing checks).
func phiFactors(n int, scale float64) string {
	f := make([]float64, n)
	for i := range f {
		f[i] = 1 + scale*float64(i)
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// TestPhi3HubConfigs reads the config.json of Phi-3.5-mini-instruct and
// Phi-4-mini-instruct as published (transformers v4 layout, factor lists
// abridged to their lengths): fused projections, LongRoPE from the
// top-level original_max_position_embeddings, the attention factor
// transformers derives (√(1 + ln 32 / ln 4096) for both), and Phi-4-mini's
// partial rotary (96 of 128 dimensions) and tied embeddings.
func TestPhi3HubConfigs(t *testing.T) {
	phi35 := `{"architectures": ["Phi3ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
  "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072, "initializer_range": 0.02, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "model_type": "phi3", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 32, "original_max_position_embeddings": 4096, "pad_token_id": 32000, "resid_pdrop": 0.0,
  "rms_norm_eps": 1e-05, "rope_scaling": {"long_factor": ` + phiFactors(48, 0.5) + `, "short_factor": ` + phiFactors(48, 0.01) + `, "type": "longrope"},
  "rope_theta": 10000.0, "sliding_window": 262144, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.3", "use_cache": true, "attention_bias": false, "vocab_size": 32064}`
	phi4 := `{"architectures": ["Phi3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 199999,
  "embd_pdrop": 0.0, "eos_token_id": 199999, "full_attn_mod": 1, "hidden_act": "silu", "hidden_size": 3072,
  "initializer_range": 0.02, "intermediate_size": 8192, "interpolate_factor": 1, "lm_head_bias": false,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "phi3", "num_attention_heads": 24,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "original_max_position_embeddings": 4096, "pad_token_id": 199999,
  "partial_rotary_factor": 0.75, "resid_pdrop": 0.0, "rms_norm_eps": 1e-05,
  "rope_scaling": {"long_factor": ` + phiFactors(48, 0.5) + `, "short_factor": ` + phiFactors(48, 0.01) + `, "type": "longrope"},
  "rope_theta": 10000.0, "sliding_window": 262144, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0", "use_cache": true, "vocab_size": 200064}`
	attn := math.Sqrt(1 + math.Log(32)/math.Log(4096))
	for _, tc := range []struct {
		name             string
		doc              string
		headDim, rot, kv int
		tied             bool
		bos, eos         int
	}{
		{"Phi-3.5-mini", phi35, 96, 96, 32, false, 1, 32000},
		{"Phi-4-mini", phi4, 128, 96, 8, true, 199999, 199999},
	} {
		c, err := ParseConfig([]byte(tc.doc))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !c.FusedProjections || c.HeadDim != tc.headDim || c.RotaryDim() != tc.rot || c.NumKVHeads != tc.kv || c.TieEmbeddings != tc.tied ||
			c.RMSNormEps != 1e-5 || c.BOSTokenID != tc.bos || len(c.EOSTokenIDs) != 1 || c.EOSTokenIDs[0] != tc.eos ||
			c.SlidingWindow != 262144 || !c.SlidingLayers[31] || c.AttentionBias || c.MLPBias {
			t.Fatalf("%s read as %+v", tc.name, c)
		}
		r := c.Rope
		if r.Type != "longrope" || r.OriginalMaxPositions != 4096 || r.Factor != 32 || len(r.ShortFactor) != 48 {
			t.Fatalf("%s RoPE read as %+v", tc.name, r)
		}
		inv, scale := c.InvFreq(0)
		if len(inv) != tc.rot/2 || math.Abs(scale-attn) > 1e-15 {
			t.Fatalf("%s: %d frequencies, attention factor %v; want %d and %v", tc.name, len(inv), scale, tc.rot/2, attn)
		}
	}
}

// TestPhi3ConfigRules: Phi3Config's own rules: the defaults it changes
// (eps 1e-5, pad 32000, no window, original length 4096), "su" and "yarn"
// read as longrope, other types refused, original_max_position_embeddings
// taken from the top level over rope_scaling's, the factor count checked
// against the rotated pairs, and partial_rotary_factor kept in (0, 1].
func TestPhi3ConfigRules(t *testing.T) {
	const phi = `{"model_type": "phi3", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4`
	c, err := ParseConfig([]byte(phi + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.FusedProjections || c.RMSNormEps != 1e-5 || c.PadTokenID != 32000 || c.NumKVHeads != 4 || c.MaxPositions != 4096 ||
		c.SlidingWindow != 0 || c.Rope.Type != "default" || c.RotaryDim() != 8 || c.TieEmbeddings {
		t.Fatalf("defaults: %+v", c)
	}
	longrope := func(typ, extra string, n int) string {
		return fmt.Sprintf(`%s, "max_position_embeddings": 1024, "rope_scaling": {"type": %q, "short_factor": %s, "long_factor": %s%s}}`,
			phi, typ, phiFactors(n, 0.1), phiFactors(n, 1), extra)
	}
	for _, typ := range []string{"su", "yarn", "longrope"} {
		c, err := ParseConfig([]byte(longrope(typ, `, "original_max_position_embeddings": 64`, 4)))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		// Phi3Config.original_max_position_embeddings (4096 by default)
		// overrides the one inside rope_scaling; factor = 1024/4096 ≤ 1.
		if c.Rope.Type != "longrope" || c.Rope.OriginalMaxPositions != 4096 {
			t.Fatalf("%s: %+v", typ, c.Rope)
		}
		if _, s := c.InvFreq(0); s != 1 {
			t.Fatalf("%s: attention factor %v with factor 1024/4096, want 1", typ, s)
		}
	}
	c, err = ParseConfig([]byte(strings.Replace(longrope("longrope", "", 4), `"max_position_embeddings"`, `"original_max_position_embeddings": 256, "max_position_embeddings"`, 1)))
	if err != nil || c.Rope.OriginalMaxPositions != 256 || c.Rope.Factor != 4 {
		t.Fatalf("top-level original_max_position_embeddings: %+v, %v", c.Rope, err)
	}
	for _, bad := range []struct{ doc, want string }{
		{phi + `, "rope_scaling": {"type": "linear", "factor": 2.0}}`, `Phi3Config accepts only default and longrope`},
		{longrope("longrope", "", 3), "want one per rotated pair: head_dim/2 = 4"},
		{strings.Replace(longrope("longrope", "", 4), `"max_position_embeddings"`, `"partial_rotary_factor": 0.5, "max_position_embeddings"`, 1),
			"want one per rotated pair: head_dim × partial_rotary_factor / 2 = 2"},
		{phi + `, "partial_rotary_factor": 1.5}`, "partial_rotary_factor must be in (0, 1]"},
		{phi + `, "partial_rotary_factor": 0.125}`, "RoPE would rotate 1 dimensions per head"},
		{phi + `, "sliding_window": 0}`, "sliding_window must be > 0 or null"},
	} {
		_, err := ParseConfig([]byte(bad.doc))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%.80s…: error %v, want it to say %q", bad.doc[len(phi):], err, bad.want)
		}
	}
	if _, err := ParseConfig([]byte(phi + `, "rope_scaling": {"type": "dynamic", "factor": 2.0}}`)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("dynamic RoPE on phi3: %v, want ErrUnsupported", err)
	}
	c, err = ParseConfig([]byte(phi + `, "sliding_window": 2047}`)) // Phi-3-mini-4k
	if err != nil || c.SlidingWindow != 2047 || !c.SlidingLayers[0] || !c.SlidingLayers[1] {
		t.Fatalf("sliding window on every layer: %+v, %v", c, err)
	}
}

// phi3TinyDir is testdata/phi3-tiny with its weights, which
// internal/tinymodels generates.
func phi3TinyDir(t testing.TB) string { return tinymodels.Dir(t, "phi3") }

// frozenCopy wraps a (dense) copy of t as a frozen parameter.
func frozenCopy(t *tensor.Tensor) *autograd.Var { return autograd.Frozen(t.Contiguous(), "") }

// unfuse rebuilds each block of a Phi-3 model with separate q, k, v, gate
// and up Linears cut from the fused weights (q, k, v rows in that order;
// gate then up), the layout of every other family.
func unfuse(m *Model) {
	c := m.Config
	qd, kvd := c.NumHeads*c.HeadDim, c.NumKVHeads*c.HeadDim
	cut := func(l *Linear, sizes ...int) []*Linear {
		var out []*Linear
		for i, w := range tensor.Split(l.Weight.Value, 0, sizes...) {
			out = append(out, &Linear{Name: fmt.Sprintf("%s.%d", l.Name, i), Weight: frozenCopy(w)})
		}
		return out
	}
	for _, b := range m.Layers {
		qkv := cut(b.Attn.QKV, qd, kvd, kvd)
		b.Attn = Attention{Q: qkv[0], K: qkv[1], V: qkv[2], O: b.Attn.O}
		gu := cut(b.MLP.GateUp, c.IntermediateSize, c.IntermediateSize)
		b.MLP = MLP{Gate: gu[0], Up: gu[1], Down: b.MLP.Down}
	}
}

// TestPhi3FusedSplit: the fused qkv_proj and gate_up_proj compute what
// separate projections cut from their rows compute (q, k, v in that
// order; gate first), so the fused modules are split as Phi3Attention and
// Phi3MLP split them; cutting in another order changes the logits.
func TestPhi3FusedSplit(t *testing.T) {
	m, err := Load(phi3TinyDir(t), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.Layers[0].Linears()); n != 4 || m.Layers[0].Attn.QKV.Out() != (4+2*2)*16 || m.Layers[0].MLP.GateUp.Out() != 2*128 {
		t.Fatalf("%d linears per block, qkv %v, gate_up %v", n, m.Layers[0].Attn.QKV.Weight.Shape(), m.Layers[0].MLP.GateUp.Weight.Shape())
	}
	ids := []int64{0, 412, 87, 1033, 2, 9, 3000, 17, 255, 4095, 64, 700}
	logits := func(m *Model) []float64 {
		out, err := m.Forward(nil, Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids, 1, len(ids))}, ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Logits.Value.F64()
	}
	fused := logits(m)
	unfuse(m)
	if e := testutil.RelFrobenius(fused, logits(m)); e > 1e-6 {
		t.Fatalf("fused and split projections differ by %.3g", e)
	}
	for _, b := range m.Layers { // k and v swapped: a wrong split order must show
		b.Attn.K, b.Attn.V = b.Attn.V, b.Attn.K
	}
	if e := testutil.RelFrobenius(fused, logits(m)); e < 1e-2 {
		t.Fatalf("k and v swapped still match (%.3g)", e)
	}
}

// TestLongRopeSelectionPerPass: as in transformers, a forward pass whose
// largest position passes original_max_position_embeddings (32 here) runs
// every position on the long factors, a shorter one on the short factors:
// the first 32 logits of a 33-token pass differ from those of a 32-token
// pass, while passes of 31 and 32 tokens agree on their common prefix.
func TestLongRopeSelectionPerPass(t *testing.T) {
	m, err := Load(phi3TinyDir(t), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Rope.OriginalMaxPositions != 32 {
		t.Fatalf("original length %d, want 32", m.Config.Rope.OriginalMaxPositions)
	}
	ids := make([]int64, 33)
	for i := range ids {
		ids[i] = int64(i*37%4096 + 5)
	}
	prefix := func(T, keep int) []float64 {
		out, err := m.Forward(nil, Batch{InputIDs: tensor.FromHost(m.Backend, tensor.I64, ids[:T], 1, T)}, ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Logits.Value.F64()[:keep*m.Config.VocabSize]
	}
	if e := testutil.RelFrobenius(prefix(31, 31), prefix(32, 31)); e > 1e-6 {
		t.Fatalf("31 and 32 tokens (both short factors) differ on their prefix by %.3g", e)
	}
	if e := testutil.RelFrobenius(prefix(32, 32), prefix(33, 32)); e < 1e-2 {
		t.Fatalf("32 tokens (short factors) and 33 (long) agree on their prefix (%.3g): the long factors were not applied", e)
	}
}

// TestPartialRotaryPassThrough: with partial_rotary_factor 0.75 and
// head_dim 16, RoPE turns dimensions 0-11 of each head and leaves 12-15 as
// they are.
func TestPartialRotaryPassThrough(t *testing.T) {
	c, err := LoadConfig("../testdata/phi4mini-tiny")
	if err != nil {
		t.Fatal(err)
	}
	if c.RotaryDim() != 12 || c.HeadDim != 16 {
		t.Fatalf("rotary %d of %d", c.RotaryDim(), c.HeadDim)
	}
	be := tensor.CPUDefault()
	const T, H, D = 3, 2, 16
	x := make([]float32, T*H*D)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	cos, sin := c.RopeTables(be, tensor.F32, []int{0, 5, 9}, 1, T)
	y := rotate(nil, frozenCopy(tensor.FromHost(be, tensor.F32, x, 1, T, H, D)), cos, sin).Value.F32()
	moved := false
	for i := range x {
		if d := i % D; d >= 12 && y[i] != x[i] {
			t.Fatalf("dimension %d of element %d changed: %v → %v", d, i, x[i], y[i])
		} else if d < 12 && i >= H*D && y[i] != x[i] {
			moved = true
		}
	}
	if !moved {
		t.Fatal("the rotated dimensions did not move at positions 5 and 9")
	}
}

// TestInvFreqPartialLongrope: with partial_rotary_factor 0.75 on head_dim
// 16 the frequencies are those of a 12-dimensional RoPE,
// 1 / (factor_i · θ^(2i/12)), short factors up to the pretraining length
// (512) and long ones past it, with one attention factor for both.
func TestInvFreqPartialLongrope(t *testing.T) {
	c, err := LoadConfig("../testdata/phi4mini-tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		seqLen  int
		factors []float64
	}{{0, c.Rope.ShortFactor}, {512, c.Rope.ShortFactor}, {513, c.Rope.LongFactor}} {
		got, s := c.InvFreq(tc.seqLen)
		want := make([]float64, 6)
		for i := range want {
			want[i] = 1 / (tc.factors[i] * math.Pow(10000, float64(2*i)/12))
		}
		checkFreqs(t, fmt.Sprintf("seq_len %d", tc.seqLen), got, want)
		checkScale(t, "partial longrope", s, math.Sqrt(1+math.Log(4)/math.Log(512)))
	}
}
