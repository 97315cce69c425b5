package nn

import (
	"math"
	"strings"
	"testing"
)

// TestRopeParametersUsableInFloat32: the RoPE frequencies are computed in
// float32 (as in transformers), so a base or factor that is > 0 in
// float64 but 0 or +Inf in float32, or parameters that combine into a NaN,
// infinite or zero frequency or scaling, are refused with the config.json
// key named, not run into NaN logits blamed on the weights.
func TestRopeParametersUsableInFloat32(t *testing.T) {
	long := func(v string) string { return "[" + v + ", 1, 1, 1]" } // head_dim 8: 4 pairs
	for _, tc := range []struct {
		name, keys string
		want       []string
	}{
		{"theta 0 in float32", `"rope_theta": 1e-300`, []string{"rope_theta 1e-300", "is 0 in float32"}},
		{"theta +Inf in float32", `"rope_theta": 1e300`, []string{"rope_theta 1e+300", "+Inf in float32"}},
		{"theta inside the object", `"rope_parameters": {"rope_type": "default", "rope_theta": 1e-300}`, []string{"rope_theta 1e-300"}},
		{"linear factor 0 in float32", `"rope_scaling": {"type": "linear", "factor": 1e-300}`, []string{"rope linear: factor 1e-300", "is 0 in float32"}},
		{"linear factor +Inf in float32", `"rope_scaling": {"type": "linear", "factor": 1e300}`, []string{"rope linear: factor 1e+300", "+Inf"}},
		{"dynamic factor", `"rope_scaling": {"type": "dynamic", "factor": 1e300}`, []string{"rope dynamic: factor 1e+300"}},
		{"yarn factor", `"rope_parameters": {"rope_type": "yarn", "factor": 1e-300, "original_max_position_embeddings": 512}`, []string{"rope yarn: factor 1e-300"}},
		// A denormal base passes the float32 rounding but its highest
		// frequency is ~1e37: the angle overflows at long positions.
		{"theta denormal in float32", `"rope_theta": 1e-44`, []string{"rope_theta 1e-44", "inverse frequency 3", "overflows"}},
		// yarn's correction range divides by ln(rope_theta): NaN at 1.
		{"yarn base 1", `"rope_parameters": {"rope_type": "yarn", "rope_theta": 1, "factor": 4, "original_max_position_embeddings": 512}`,
			[]string{"rope_type yarn", "rope_theta 1", "factor 4", "is NaN"}},
		{"yarn attention factor +Inf in float32", `"rope_parameters": {"rope_type": "yarn", "factor": 4, "attention_factor": 1e300, "original_max_position_embeddings": 512}`,
			[]string{"attention_factor 1e+300", "scaling"}},
		{"longrope short factor 0", `"rope_parameters": {"rope_type": "longrope", "short_factor": ` + long("0") + `, "long_factor": ` + long("1") + `, "original_max_position_embeddings": 512}`,
			[]string{"rope_type longrope", "short_factor", "inverse frequency 0", "+Inf"}},
		// Only the long factors (past original_max_position_embeddings)
		// break: checked as well as the short ones.
		{"longrope long factor 0 in float32", `"rope_parameters": {"rope_type": "longrope", "short_factor": ` + long("1") + `, "long_factor": ` + long("1e-300") + `, "original_max_position_embeddings": 512}`,
			[]string{"long_factor", "inverse frequency 0", "+Inf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := `{"model_type": "llama", ` + sizes + `, ` + tc.keys + `}`
			_, err := ParseConfig([]byte(js))
			if err == nil {
				t.Fatalf("%s: accepted", js)
			}
			for _, w := range append([]string{"config.json"}, tc.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestRopeRealSettingsAccepted: the checks refuse none of the RoPE
// settings real checkpoints use, from the smallest base to the largest
// (Gradient's Llama-3-8B-Instruct-Gradient-1048k: 3.58e9), and give
// finite, nonzero frequencies for them.
func TestRopeRealSettingsAccepted(t *testing.T) {
	for _, keys := range []string{
		`"rope_theta": 10000.0`,
		`"rope_theta": 3580165449.0`,
		`"rope_theta": 1.0`,
		`"rope_scaling": {"type": "linear", "factor": 0.5}`,
		`"rope_scaling": {"type": "dynamic", "factor": 2.0}`,
		// Llama 3.1
		`"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}`,
		// Qwen2.5 with YaRN as its model card sets it
		`"rope_theta": 1000000.0, "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}`,
		// DeepSeek-V2's YaRN: mscale and mscale_all_dim
		`"rope_theta": 10000, "rope_scaling": {"type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096}`,
	} {
		js := `{"model_type": "llama", ` + sizes + `, ` + keys + `}`
		c, err := ParseConfig([]byte(js))
		if err != nil {
			t.Errorf("%s: %v", keys, err)
			continue
		}
		for _, n := range []int{0, c.MaxPositions} {
			inv, s := c.InvFreq(n)
			for i, f := range inv {
				if !(f > 0) || math.IsInf(f, 0) {
					t.Errorf("%s: inv_freq[%d] at seq_len %d = %g", keys, i, n, f)
				}
			}
			if !(s > 0) || math.IsInf(s, 0) {
				t.Errorf("%s: scaling %g", keys, s)
			}
		}
	}
}

// TestRopeLocalBaseNamed: Gemma 3's local base is checked the same way,
// under its own key.
func TestRopeLocalBaseNamed(t *testing.T) {
	for v, want := range map[string]string{
		"1e-300": "rope_local_base_freq 1e-300 is 0 in float32",
		"1e300":  "rope_local_base_freq 1e+300 is +Inf in float32",
		"1e-40":  "overflows",
	} {
		js := strings.Replace(gemma3Config, `"rope_local_base_freq": 10000.0`, `"rope_local_base_freq": `+v, 1)
		_, err := ParseConfig([]byte(js))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "local (sliding-layer) RoPE") || !strings.Contains(err.Error(), "rope_local_base_freq") {
			t.Errorf("rope_local_base_freq %s: err %v, want it refused naming the key (%q)", v, err, want)
		}
	}
}
