package main

import (
	"context"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor/cudabackend"
)

// TestEvalDeviceFlags: eval's --device and --precision reach the
// evaluation as train's do: the device line says what was asked for, a
// device name eval does not know is a usage error naming the flag, and
// --device cuda without a usable GPU fails with the reason rather than
// evaluating on the CPU.
func TestEvalDeviceFlags(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	base := []string{"eval", "--questions", "0", "--set", "training.eval.max_batches=1"}
	out, err := run(t, append(base, "--device", "cpu", "--precision", "f32")...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "device: cpu, precision f32\n") || !strings.Contains(out, "validation: loss") {
		t.Errorf("--device cpu --precision f32: the device line or the validation is missing:\n%s", out)
	}
	out, err = run(t, append(base, "--device", "tpu")...)
	if err == nil || exitCode(context.Background(), err) != 2 || !strings.Contains(err.Error(), "--device tpu") {
		t.Errorf("--device tpu: %v (want a usage error naming --device)\n%s", err, out)
	}
	if ok, _ := cudabackend.Available(); ok {
		return // a GPU is here: cuda would evaluate on it
	}
	out, err = run(t, append(base, "--device", "cuda")...)
	if err == nil || !strings.Contains(err.Error(), "device cuda") || strings.Contains(out, "validation: loss") {
		t.Errorf("--device cuda without a GPU: %v\n%s", err, out)
	}
}
