package config

import (
	"strings"
	"testing"
)

func TestMaxDeviceMemoryValidation(t *testing.T) {
	for sets, want := range map[string]string{
		"training.max_device_memory=24":                           "",
		"training.max_device_memory=0,training.device=cpu":        "",
		"training.max_device_memory=-1":                           "training.max_device_memory: must be GiB >= 0 (0 = no cap), got -1",
		"training.max_device_memory=24,training.device=cpu":       "the cap is on GPU memory: the CPU run has none to cap",
		"training.max_device_memory=2000000,training.device=cuda": "must be GiB >= 0",
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
