package train_test

import (
	"context"
	"strings"
	"testing"
)

// TestOffloadCheckpointsNeedsCheckpointing: OffloadCheckpoints moves
// Checkpointing's saved inputs, so without Checkpointing it is refused
// (never ignored); with it the trainer hands both to the model.
func TestOffloadCheckpointsNeedsCheckpointing(t *testing.T) {
	tr, _ := newRun(t, 1)
	tr.Cfg.OffloadCheckpoints = true
	if err := tr.Fit(context.Background()); err == nil || !strings.Contains(err.Error(), "Checkpointing is off") {
		t.Fatalf("OffloadCheckpoints alone: %v, want a refusal naming Checkpointing", err)
	}
	tr, _ = newRun(t, 1)
	tr.Cfg.OffloadCheckpoints, tr.Cfg.Checkpointing = true, true
	if err := tr.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !tr.Model.Checkpointing || !tr.Model.OffloadCheckpoints {
		t.Errorf("model: checkpointing %v, offload %v", tr.Model.Checkpointing, tr.Model.OffloadCheckpoints)
	}
}
