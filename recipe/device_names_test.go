package recipe

import (
	"fmt"
	"testing"
)

// TestDeviceNames: CheckDevice and CheckPrecision, which a command runs
// before its work (ftune generate's --device and --precision), take what
// OpenDevice takes and refuse what it refuses, with the same words: one
// parser behind both.
func TestDeviceNames(t *testing.T) {
	for _, c := range []struct {
		device, precision, want string // want: the refusal, "" if none
	}{
		{"cpu", "f32", ""},
		{"", "", ""},
		{" CPU ", "AUTO", ""},
		{"gpu", "", `device "gpu" is not auto, cpu, cuda or cuda:N`},
		{"cuda:", "", `device "cuda:" is not cuda:N with N ≥ 0`},
		{"cuda:-1", "", `device "cuda:-1" is not cuda:N with N ≥ 0`},
		{"cpu", "fp16", `precision "fp16" is not auto, bf16 or f32`},
	} {
		check := CheckDevice(c.device)
		if check != nil {
			check = fmt.Errorf("device %w", check)
		} else if check = CheckPrecision(c.precision); check != nil {
			check = fmt.Errorf("precision %w", check)
		}
		_, open := OpenDevice(c.device, c.precision)
		switch {
		case c.want == "" && (check != nil || open != nil):
			t.Errorf("%q, %q: check %v, open %v; want both to take it", c.device, c.precision, check, open)
		case c.want != "" && (check == nil || check.Error() != c.want || open == nil || open.Error() != "recipe: "+c.want):
			t.Errorf("%q, %q: check %v, open %v; want %q", c.device, c.precision, check, open, c.want)
		}
	}
}
