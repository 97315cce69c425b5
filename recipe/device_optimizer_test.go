package recipe

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
)

// env.json's optimizer path follows the backend, the optimizer and the
// workers: the host on the CPU (and no log line there), the device for
// AdamW on one GPU worker, the host with the reason for SGD or several
// workers.
func TestOptimizerPathFollowsTheRun(t *testing.T) {
	cpu := tensor.CPUDefault()
	if got := optimizerPath(cpu, "", 1); got != "host: optim's AdamW on the parameters in place" {
		t.Errorf("default optimizer on the CPU: %q", got)
	}
	if got := optimizerPath(cpu, "sgd", 1); got != "host: optim's SGD on the parameters in place" {
		t.Errorf("SGD on the CPU: %q", got)
	}
	if optimizerLog(cpu, &bytes.Buffer{}) != nil {
		t.Error("a CPU run prints the optimizer path")
	}
	if ok, reason := cudabackend.Available(); !ok {
		t.Skip("no GPU for the device cases: " + reason)
	}
	d, err := OpenDevice("cuda", "bf16")
	if err != nil {
		t.Fatal(err)
	}
	if got := optimizerPath(d.Backend, "adamw", 1); got != cudabackend.FusedOptimizerPath {
		t.Errorf("AdamW on one GPU: %q", got)
	}
	for _, c := range []struct {
		opt   string
		world int
		why   string
	}{{"sgd", 1, "only AdamW"}, {"adamw", 2, "data-parallel"}} {
		if got := optimizerPath(d.Backend, c.opt, c.world); !strings.HasPrefix(got, "host:") || !strings.Contains(got, c.why) {
			t.Errorf("%s on %d GPU workers: %q", c.opt, c.world, got)
		}
	}
	if len(optimizerLog(d.Backend, &bytes.Buffer{})) != 1 {
		t.Error("a GPU run does not print the optimizer path")
	}
}
