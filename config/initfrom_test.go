package config

import (
	"strings"
	"testing"
)

// TestInitFromRefusesAShape: with training.lora.init_from the adapter's
// own config sets its shape, so a shape key set beside it (which would be
// dropped) is refused naming the key, as are per-subject adapters; the
// run's dropout and seed are its own and stay allowed.
func TestInitFromRefusesAShape(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want string // "" = valid
	}{
		{[]string{"training.lora.init_from=a"}, ""},
		{[]string{"training.lora.init_from=a", "training.lora.dropout=0.2", "training.seed=7"}, ""},
		{[]string{"training.lora.init_from=a", "training.lora.r=8"}, "training.lora.r"},
		{[]string{"training.lora.init_from=a", "training.lora.targets=[q_proj]"}, "training.lora.targets"},
		{[]string{"training.lora.init_from=a", "training.lora.dora=true"}, "training.lora.dora"},
		{[]string{"training.lora.init_from=a", "training.lora.modules_to_save=[lm_head]"}, "training.lora.modules_to_save"},
		{[]string{"training.lora.init_from=a", "training.adapters=per-subject"}, "continues one adapter"},
	} {
		cfg := Default()
		err := Apply(cfg, tc.set)
		if err == nil {
			err = cfg.Validate()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.set, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want an error naming %q", tc.set, err, tc.want)
		}
	}
}
