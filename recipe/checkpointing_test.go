package recipe

import (
	"context"
	"testing"
)

// TestGradientCheckpointingMatchesPlainRun: a run with gradient
// checkpointing takes the steps of the same run without it — per-step
// losses, validation and every adapter tensor equal bit for bit — with
// LoRA dropout, NEFTune noise, gradient accumulation and per-subject
// adapters routed by row: the checkpointed blocks apply dropout in their
// first forward and their recompute replays the same masks through the
// same adapters.
func TestGradientCheckpointingMatchesPlainRun(t *testing.T) {
	o := dpOptions(t, "plain")
	o = MultiTask(o, []string{"chemistry", "geography"}, true)
	o.Pack, o.Dropout, o.NEFTuneAlpha = false, 0.1, 5
	plain, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o.OutDir, o.RunName, o.GradCheckpointing = t.TempDir(), "ckpt", true
	ckpt, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFloats(ckpt.Losses, plain.Losses, 0) {
		t.Errorf("per-step losses\n without checkpointing %v\n with                  %v", plain.Losses, ckpt.Losses)
	}
	// compareRunsWithin's messages say "one process" for the plain run and
	// "workers" for the checkpointed one.
	compareRunsWithin(t, plain, ckpt, dpTolerance, 0)
}
