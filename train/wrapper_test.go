package train_test

import (
	"strings"
	"testing"

	"github.com/ftune/ftune/tensor"
	"github.com/ftune/ftune/tensor/cudabackend"
	"github.com/ftune/ftune/train"
)

// wrapped is a pass-through backend (as bench.ProfiledBackend is).
type wrapped struct{ tensor.Backend }

func (w wrapped) Unwrap() tensor.Backend { return w.Backend }

// A backend that wraps a GPU's keeps the device optimizer step: the
// benchmark profiles the step users run, not a host fallback. (The zero
// cudabackend.Backend stands for a GPU: only its type is looked at.)
func TestOptimizerPathSeesThroughAWrapper(t *testing.T) {
	gpu := &cudabackend.Backend{}
	for name, be := range map[string]tensor.Backend{"gpu": gpu, "wrapped gpu": wrapped{gpu}, "twice wrapped gpu": wrapped{wrapped{gpu}}} {
		if path, dev := train.OptimizerPathFor(be, "adamw", 1); !dev || path != cudabackend.FusedOptimizerPath {
			t.Errorf("%s: %q, device %v", name, path, dev)
		}
	}
	if path, dev := train.OptimizerPathFor(wrapped{tensor.CPUDefault()}, "adamw", 1); dev || !strings.Contains(path, "in place") {
		t.Errorf("wrapped CPU: %q, device %v", path, dev)
	}
}
