package config

import (
	"strings"
	"testing"
)

// training.attention_kernel: auto by default; flash refused on the CPU and
// with precision f32 (the flash kernels compute at bf16 precision), a bad
// name refused with the accepted ones.
func TestAttentionKernelValidation(t *testing.T) {
	if Default().Training.AttentionKernel != "auto" {
		t.Errorf("default training.attention_kernel %q, want auto", Default().Training.AttentionKernel)
	}
	for sets, want := range map[string]string{
		"training.attention_kernel=flash":                             "",
		"training.attention_kernel=flash,training.precision=bf16":     "",
		"training.attention_kernel=simt,training.device=cpu":          "",
		"training.attention_kernel=auto,training.precision=f32":       "",
		"training.attention_kernel=sdpa":                              `training.attention_kernel: "sdpa" is not one of auto, flash, simt`,
		"training.attention_kernel=flash,training.device=cpu":         "flash runs on a CUDA device",
		"training.attention_kernel=flash,training.precision=f32":      "f32 is the float32 parity path",
		"training.attention_kernel=flash,training.device=cuda:1":      "",
		"training.attention_kernel=simt,training.precision=f32":       "",
		"training.attention_kernel=flash,training.precision=auto":     "",
		"training.attention_kernel=FLASH,training.precision=bf16":     `"FLASH" is not one of auto, flash, simt`,
		"training.attention_kernel=simt,training.gemm_provider=ftune": "",
	} {
		cfg := Default()
		if err := Apply(cfg, strings.Split(sets, ",")); err != nil {
			t.Fatal(err)
		}
		err := cfg.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", sets, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: got %v, want %q", sets, err, want)
		}
	}
}
