package lora

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixtureDirs are the PEFT 0.21 adapters of the golden fixtures
// (testdata/fixtures, see its README for provenance).
var fixtureDirs = []string{
	filepath.Join("..", "testdata", "fixtures", "llama-tiny"),
	filepath.Join("..", "testdata", "fixtures", "qwen2-tiny"),
}

// TestParseFixtureConfig reads the adapter_config.json that PEFT 0.21 wrote
// and checks the typed fields and that writing it back gives the same bytes
// (key set, order, indentation, float spelling).
func TestParseFixtureConfig(t *testing.T) {
	for _, dir := range fixtureDirs {
		for _, sub := range []string{"adapter_init", "adapter_after"} {
			path := filepath.Join(dir, sub, ConfigFile)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfig(data)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			wantTargets := []string{"v_proj", "o_proj", "up_proj", "q_proj", "gate_proj", "k_proj", "down_proj"}
			if c.PeftType != "LORA" || c.TaskType != "CAUSAL_LM" || c.R != 4 || c.LoraAlpha != 8 ||
				c.LoraDropout != 0 || c.UseRSLoRA || c.Bias != "none" || !c.InitLoraWeights.Bool ||
				!c.InferenceMode || c.PeftVersion != "0.21.0" || c.BaseModelNameOrPath != "" ||
				!slices.Equal(c.TargetModules.Names, wantTargets) || c.TargetModules.IsRegex {
				t.Errorf("%s: parsed %+v", path, c)
			}
			if s := c.Scaling("model.layers.0.self_attn.q_proj"); s != 2 {
				t.Errorf("%s: scaling %v, want alpha/r = 2", path, s)
			}
			out, err := c.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Errorf("%s: written config differs from PEFT's:\n%s", path, out)
			}
		}
	}
}

// TestNewConfigHasPEFTKeySet: a fresh config is written with exactly the
// keys PEFT 0.21 writes (so PEFT reports nothing unexpected or missing), and
// reads back to the same values.
func TestNewConfigHasPEFTKeySet(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join(fixtureDirs[0], "adapter_init", ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	json.Unmarshal(fixture, &want)
	c := NewConfig(16, 32, "q_proj", "v_proj")
	c.LoraDropout = 0.05
	c.UseRSLoRA = true
	c.BaseModelNameOrPath = "tiny-base"
	out, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("written config lacks %q", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("written config has %q, which PEFT 0.21 does not write", k)
		}
	}
	if !bytes.Contains(out, []byte(`"lora_dropout": 0.05`)) || !bytes.Contains(out, []byte(`"lora_alpha": 32,`)) {
		t.Errorf("float/int spelling:\n%s", out)
	}
	back, err := ParseConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	if back.R != 16 || back.LoraAlpha != 32 || back.LoraDropout != 0.05 || !back.UseRSLoRA ||
		back.BaseModelNameOrPath != "tiny-base" || !slices.Equal(back.TargetModules.Names, []string{"q_proj", "v_proj"}) {
		t.Errorf("round trip: %+v", back)
	}
	// rsLoRA: alpha/√r = 32/4.
	if s := back.Scaling("x.q_proj"); s != 8 {
		t.Errorf("rsLoRA scaling %v, want 8", s)
	}
}

func TestConfigKeepsUnknownKeys(t *testing.T) {
	in := `{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": "all-linear", "future_option": {"a": [1, 2]}}`
	c, err := ParseConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TargetModules.IsRegex || c.TargetModules.Regex != AllLinear || c.InitLoraWeights.Bool != true || c.Bias != "none" {
		t.Errorf("defaults not applied: %+v", c)
	}
	out, _ := c.JSON()
	if !bytes.Contains(out, []byte(`"future_option": {`)) || !bytes.Contains(out, []byte(`"target_modules": "all-linear"`)) {
		t.Errorf("unknown key or regex target lost:\n%s", out)
	}
	c2, err := ParseConfig([]byte(`{"peft_type": "LORA", "r": 8, "target_modules": ["q_proj"], "init_lora_weights": false}`))
	if err != nil {
		t.Fatal(err)
	}
	if c2.InitLoraWeights.Bool || c2.InitLoraWeights.Method != "" || c2.LoraAlpha != 8 {
		t.Errorf("init_lora_weights false / default alpha 8: %+v", c2)
	}
}

func TestRankAlphaPatterns(t *testing.T) {
	in := `{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "down_proj"],
		"rank_pattern": {"layers.1.mlp.down_proj": 2, "down_proj": 4},
		"alpha_pattern": {"q_proj": 3.5}}`
	c, err := ParseConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		module string
		r      int
		alpha  float64
	}{
		{"model.layers.0.self_attn.q_proj", 8, 3.5},
		{"model.layers.0.mlp.down_proj", 4, 16},
		{"model.layers.1.mlp.down_proj", 2, 16},  // first key in file order wins
		{"model.layers.0.mlp.xdown_proj", 8, 16}, // a key must match whole dotted parts
	}
	for _, cs := range cases {
		if r, a := c.Rank(cs.module), c.Alpha(cs.module); r != cs.r || a != cs.alpha {
			t.Errorf("%s: r=%d alpha=%v, want %d %v", cs.module, r, a, cs.r, cs.alpha)
		}
	}
	if s := c.Scaling("model.layers.1.mlp.down_proj"); s != 8 {
		t.Errorf("scaling 16/2 = %v", s)
	}
	out, _ := c.JSON()
	if !bytes.Contains(out, []byte(`"down_proj": 4`)) || !bytes.Contains(out, []byte(`"q_proj": 3.5`)) {
		t.Errorf("patterns not written:\n%s", out)
	}
}

func TestConfigErrors(t *testing.T) {
	base := map[string]any{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": []string{"q_proj"}}
	cases := []struct {
		name string
		set  map[string]any
		want error
		text string
	}{
		{"r zero", map[string]any{"r": 0}, ErrInvalidConfig, "r = 0"},
		{"r negative", map[string]any{"r": -4}, ErrInvalidConfig, "r = -4"},
		{"r fractional", map[string]any{"r": 2.5}, ErrInvalidConfig, "not an integer"},
		{"r huge", map[string]any{"r": 1 << 40}, ErrInvalidConfig, "r = 1099511627776, more than any adapter's rank"},
		{"alpha zero", map[string]any{"lora_alpha": 0}, ErrInvalidConfig, "lora_alpha = 0"},
		{"alpha negative", map[string]any{"lora_alpha": -1}, ErrInvalidConfig, "lora_alpha = -1"},
		{"dropout", map[string]any{"lora_dropout": 1.0}, ErrInvalidConfig, "lora_dropout"},
		{"no targets", map[string]any{"target_modules": nil}, ErrInvalidConfig, "target_modules"},
		{"other type", map[string]any{"peft_type": "IA3"}, ErrUnsupported, "IA3"},
		{"task", map[string]any{"task_type": "SEQ_CLS"}, ErrUnsupported, "SEQ_CLS"},
		{"bias", map[string]any{"bias": "all"}, ErrUnsupported, "bias"},
		{"fan in fan out", map[string]any{"fan_in_fan_out": true}, ErrUnsupported, "fan_in_fan_out"},
		{"lora bias", map[string]any{"lora_bias": true}, ErrUnsupported, "lora_bias"},
		{"pissa", map[string]any{"init_lora_weights": "pissa"}, ErrUnsupported, "pissa"},
		{"layer replication", map[string]any{"layer_replication": [][]int{{0, 2}}}, ErrUnsupported, "layer_replication"},
		{"loftq", map[string]any{"loftq_config": map[string]int{"loftq_bits": 4}}, ErrUnsupported, "loftq_config"},
		{"qalora", map[string]any{"use_qalora": true}, ErrUnsupported, "use_qalora"},
		{"lookahead regex", map[string]any{"target_modules": `.*(?!lm_head)`}, ErrInvalidConfig, "RE2"},
		{"layers with regex", map[string]any{"target_modules": ".*q_proj", "layers_to_transform": []int{0}}, ErrInvalidConfig, "layers_to_transform"},
		{"bad rank pattern", map[string]any{"rank_pattern": map[string]int{"q_proj": 0}}, ErrInvalidConfig, "rank_pattern"},
	}
	for _, c := range cases {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range c.set {
			m[k] = v
		}
		data, _ := json.Marshal(m)
		_, err := ParseConfig(data)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: err = %v, want %v mentioning %q", c.name, err, c.want, c.text)
		}
	}
	if _, err := ParseConfig([]byte(`{"peft_type": "LORA"}`)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("missing r: %v", err)
	}
	if _, err := ParseConfig([]byte(`[1]`)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("not an object: %v", err)
	}
	c := NewConfig(0, 8, "q_proj")
	if _, err := c.JSON(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("writing r=0: %v", err)
	}
}

func TestPyFloat(t *testing.T) {
	cases := map[float64]string{0: "0.0", 0.05: "0.05", 1e-05: "1e-05", 16: "16.0", 123456789: "123456789.0", 1e16: "1e+16"}
	for f, want := range cases {
		got, _ := pyFloat(f).MarshalJSON()
		if string(got) != want {
			t.Errorf("pyFloat(%v) = %s, Python writes %s", f, got, want)
		}
	}
	if _, err := pyFloat(math.NaN()).MarshalJSON(); err == nil {
		t.Error("NaN accepted")
	}
}

// TestConfigScalingBound: PEFT takes any lora_alpha, but a scaling
// (alpha/r, alpha/√r with rsLoRA) past MaxScaling is no adapter's: with
// lora_alpha 1e38 every forward pass overflows, while the weights stay
// finite and exports would write them. It is refused with the key that
// makes it (an alpha_pattern or rank_pattern entry when that is the
// extreme); real settings, up to alpha 128 at r 1, are accepted.
func TestConfigScalingBound(t *testing.T) {
	for _, c := range []struct {
		name string
		json string
		want []string // nil: accepted
	}{
		{"alpha 1e38", `"r": 16, "lora_alpha": 1e38`, []string{"lora_alpha = 1e+38", "r = 16", "alpha/r = 6.25e+36"}},
		{"just past the bound", `"r": 1, "lora_alpha": 10001`, []string{"lora_alpha = 10001", "alpha/r = 1e+04"}},
		{"at the bound", `"r": 2, "lora_alpha": 20000`, nil},
		{"rsLoRA", `"r": 4, "lora_alpha": 30000, "use_rslora": true`, []string{"alpha/√r (use_rslora) = 1.5e+04"}},
		{"same without rsLoRA", `"r": 4, "lora_alpha": 30000`, nil}, // alpha/r = 7500
		{"alpha pattern", `"r": 8, "lora_alpha": 16, "alpha_pattern": {"v_proj": 1e30}`, []string{`alpha_pattern["v_proj"] = 1e+30`, "r = 8"}},
		{"rank pattern", `"r": 64, "lora_alpha": 20000, "rank_pattern": {"q_proj": 1}`, []string{"lora_alpha = 20000", `rank_pattern["q_proj"] = 1`}},
		{"real: QLoRA", `"r": 64, "lora_alpha": 16`, nil},
		{"real: alpha 128 at r 4", `"r": 4, "lora_alpha": 128`, nil},
		{"real: alpha 128 at r 1", `"r": 1, "lora_alpha": 128`, nil},
	} {
		data := []byte(`{"peft_type": "LORA", "target_modules": ["q_proj", "v_proj"], ` + c.json + `}`)
		_, err := ParseConfig(data)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	// A config made in code is held to it too (New and Save validate).
	if _, err := NewConfig(8, 1e38, "q_proj").JSON(); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "lora_alpha") {
		t.Errorf("writing lora_alpha 1e38: %v", err)
	}
}
