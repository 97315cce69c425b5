package recipe

import (
	"strings"
	"testing"
)

// TestStepArenaRefusedWhereItDoesNothing: training.step_arena is refused,
// naming the setting, with gradient checkpointing (it would undo its
// smaller peak) and on --device cuda (it recycles CPU tensors only); on
// the CPU alone it passes.
func TestStepArenaRefusedWhereItDoesNothing(t *testing.T) {
	o := Defaults()
	o.ModelDir, o.DataRoot, o.StepArena = "model", "data", true
	if err := o.Validate(); err != nil {
		t.Fatalf("step_arena on the CPU: %v", err)
	}
	ckpt := o
	ckpt.GradCheckpointing = true
	cuda := o
	cuda.Device = "cuda"
	for name, c := range map[string]Options{"gradient_checkpointing": ckpt, "device cuda": cuda} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "training.step_arena") {
			t.Errorf("step_arena with %s: %v, want a refusal naming training.step_arena", name, err)
		}
	}
}
