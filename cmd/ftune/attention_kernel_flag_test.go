package main

import (
	"strings"
	"testing"
)

// --attention-kernel reaches training.attention_kernel: a bad name, flash
// on the CPU and flash with precision f32 are refused before anything
// loads, naming the flag or the setting.
func TestAttentionKernelFlag(t *testing.T) {
	out, err := run(t, "train", "--help")
	if err != nil || !strings.Contains(out, "--attention-kernel string ") {
		t.Fatalf("help lacks --attention-kernel: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--attention-kernel", "sdpa"}, `--attention-kernel sdpa: training.attention_kernel: "sdpa" is not one of auto, flash, simt`},
		{[]string{"--attention-kernel", "flash", "--device", "cpu"}, "flash runs on a CUDA device"},
		{[]string{"--attention-kernel", "flash", "--precision", "f32"}, "f32 is the float32 parity path"},
	} {
		out, err := run(t, append([]string{"train", "--output", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v\n%s\nwant %q", tc.args, err, out, tc.want)
		}
	}
}
