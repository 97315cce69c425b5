package lora

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// llamaLinears lists the linear layers of a Llama model with n layers, in
// the order named_modules yields them, and lm_head.
func llamaLinears(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		for _, m := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} {
			out = append(out, fmt.Sprintf("model.layers.%d.%s", i, m))
		}
	}
	return append(out, "lm_head")
}

func TestSelectTargets(t *testing.T) {
	lin := llamaLinears(2)
	mk := func(mod func(c *Config)) *Config {
		c := NewConfig(4, 8, "q_proj", "v_proj")
		mod(c)
		return c
	}
	cases := []struct {
		name string
		c    *Config
		want []string
	}{
		{"names", mk(func(*Config) {}), []string{
			"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
			"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}},
		{"dotted suffix", mk(func(c *Config) { c.TargetModules.Names = []string{"mlp.up_proj"} }),
			[]string{"model.layers.0.mlp.up_proj", "model.layers.1.mlp.up_proj"}},
		{"regex", mk(func(c *Config) { c.SetTargetRegex(`.*\.1\.self_attn\.(q|k)_proj`) }),
			[]string{"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj"}},
		{"regex is a full match", mk(func(c *Config) { c.SetTargetRegex(`q_proj`) }), nil},
		{"all-linear", NewConfig(4, 8, "all-linear"), lin[:14]},
		{"layers_to_transform", mk(func(c *Config) { c.LayersToTransform = []int{1} }),
			[]string{"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}},
		{"layers_pattern", mk(func(c *Config) { c.LayersToTransform = []int{0}; c.LayersPattern = []string{"layers"} }),
			[]string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"}},
		{"full name skips the layer filter (as in PEFT)", mk(func(c *Config) {
			c.TargetModules.Names = []string{"model.layers.0.self_attn.q_proj"}
			c.LayersToTransform = []int{1}
		}), []string{"model.layers.0.self_attn.q_proj"}},
		{"exclude list", mk(func(c *Config) {
			c.SetTargetRegex("all-linear")
			c.ExcludeModules = Targets{Names: []string{"mlp.down_proj", "o_proj"}}
		}), withoutSuffix(lin[:14], "down_proj", "o_proj")},
		{"exclude regex", mk(func(c *Config) {
			c.ExcludeModules = Targets{Regex: `.*layers\.0\..*`, IsRegex: true}
		}), []string{"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}},
		{"modules_to_save never targeted", mk(func(c *Config) {
			c.SetTargetRegex(`.*(q_proj|lm_head)`)
			c.ModulesToSave = []string{"lm_head"}
		}), []string{"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"}},
	}
	for _, c := range cases {
		got, err := c.c.SelectTargets(lin, "lm_head")
		if c.want == nil {
			if err == nil {
				t.Errorf("%s: selected %v, want an error", c.name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: selected %v\nwant %v", c.name, got, c.want)
		}
	}
}

func withoutSuffix(xs []string, suffixes ...string) []string {
	var out []string
	for _, x := range xs {
		if !slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(x, s) }) {
			out = append(out, x)
		}
	}
	return out
}

// TestSelectTargetsNoMatch: a typo in a target, or a regex that selects
// nothing, is an error naming the modules there are.
func TestSelectTargetsNoMatch(t *testing.T) {
	lin := llamaLinears(1)
	re := NewConfig(4, 8)
	re.SetTargetRegex(`.*attention.*`)
	for _, c := range []*Config{NewConfig(4, 8, "q_proj", "qproj"), re} {
		_, err := c.SelectTargets(lin, "lm_head")
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%v: err = %v, want ErrInvalidConfig", c.TargetModules, err)
		}
		for _, s := range []string{"down_proj", "gate_proj", "k_proj", "lm_head", "q_proj", "8 in all", "model.layers.0.self_attn.q_proj"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	}
	if _, err := NewConfig(4, 8, "q_proj").SelectTargets(nil, ""); err == nil || !strings.Contains(err.Error(), "no linear layers") {
		t.Errorf("empty model: %v", err)
	} // LLaMA-Factory's lora_target: all is PEFT's all-linear.
	if _, err := NewConfig(4, 8, "all").SelectTargets(lin, "lm_head"); err == nil || !strings.Contains(err.Error(), `LLaMA-Factory's "all" is "all-linear" here`) {
		t.Errorf("all: %v", err)
	}
}

// TestRSLoRAScalingPerModule: with use_rslora PEFT's LoraLayer.update_layer
// sets scaling = lora_alpha / sqrt(r) from the r and lora_alpha that
// rank_pattern and alpha_pattern give each module (plain LoRA divides by
// r); Scaling does the same.
func TestRSLoRAScalingPerModule(t *testing.T) {
	c := NewConfig(16, 32, "q_proj", "v_proj", "down_proj")
	c.UseRSLoRA = true
	c.RankPattern = []Pattern{{Key: "down_proj", Value: 4}}
	c.AlphaPattern = []Pattern{{Key: "q_proj", Value: 6}}
	for module, want := range map[string]float64{
		"model.layers.0.self_attn.q_proj": 6.0 / 4,  // alpha 6, √16
		"model.layers.1.mlp.down_proj":    32.0 / 2, // alpha 32, √4
		"model.layers.0.self_attn.v_proj": 32.0 / 4, // alpha 32, √16
	} {
		if got := c.Scaling(module); got != want {
			t.Errorf("rsLoRA %s: scaling %v, want %v", module, got, want)
		}
	}
	c.UseRSLoRA = false
	if got := c.Scaling("model.layers.1.mlp.down_proj"); got != 8 {
		t.Errorf("plain LoRA down_proj: scaling %v, want 32/4", got)
	}
}
