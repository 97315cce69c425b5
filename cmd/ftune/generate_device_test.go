package main

import (
	"context"
	"strings"
	"testing"

	"github.com/ftune/ftune"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// TestGenerateDeviceFlags: generate ran on the CPU whatever the user
// trained on; it takes train's --device and --precision, and a misspelt
// value is bad usage (exit 2) naming the flag, before anything loads (the
// model here does not exist).
func TestGenerateDeviceFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--device", "bogus"}, `--device "bogus" is not auto, cpu, cuda or cuda:N`},
		{[]string{"--device", "cuda:x"}, `--device "cuda:x" is not cuda:N with N ≥ 0`},
		{[]string{"--precision", "fp16"}, `--precision "fp16" is not auto, bf16 or f32`},
	} {
		args := append([]string{"generate", "--model", "/nonexistent/model", "--prompt", "x"}, c.args...)
		code, _, stderr := exitOf(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %q; want 2 saying %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

// TestGenerateDeviceWithoutGPU: on a machine without a usable GPU,
// --device cuda fails (exit 1) with the backend's reason, neither a panic
// nor the CPU in its place; --device auto, the default, says on stderr
// that it uses the CPU and why, as train does, and answers as the CPU
// does.
func TestGenerateDeviceWithoutGPU(t *testing.T) {
	ok, reason := cudabackend.Available()
	if ok {
		t.Skip("a GPU is usable here; this is the test of its absence")
	}
	t.Setenv("FTUNE_CACHE", t.TempDir())
	code, _, stderr := exitOf(t, "generate", "--device", "cuda", "--prompt", "x", "--max-tokens", "2")
	if code != 1 || !strings.Contains(stderr, "device cuda: cuda backend: "+reason) {
		t.Errorf("--device cuda without a GPU: exit %d, %q; want 1 with the reason %q", code, stderr, reason)
	}
	const q = "Symbol of iron?"
	want := replies(t, ftune.GenerateOptions{MaxNewTokens: 4}, q)
	line := "device: cpu, precision f32 (device auto: " + reason + "; using the CPU)\n"
	for _, args := range [][]string{nil, {"--device", "auto", "--precision", "auto"}} {
		out, log, err := runGenerate(t, context.Background(), "", append([]string{"--prompt", q, "--max-tokens", "4"}, args...)...)
		if err != nil || out != want {
			t.Errorf("%v: %q, %v; want the CPU's %q\n%s", args, out, err, want, log)
		}
		if !strings.Contains(log, line) {
			t.Errorf("%v: stderr lacks %q:\n%s", args, line, log)
		}
	}
}
