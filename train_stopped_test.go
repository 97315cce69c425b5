package ftune

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ftune/ftune/config"
)

// TestTrainStoppedValues: TrainResult.Stopped holds the exported
// constants (StoppedInterrupted is TestTrainCancelledAfterAStep's), which
// a program compares with instead of strings it had to find in the
// source.
func TestTrainStoppedValues(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	ctx := context.Background()

	cfg := tinyTrainConfig(t.TempDir(), 3)
	cfg.Training.MaxTime = config.Duration(1) // out of time at the first check
	res, err := Train(ctx, cfg, nil)
	if err != nil || res.Stopped != StoppedMaxTime {
		t.Errorf("max_time 1ns: %+v, %v; want Stopped %q", res, err, StoppedMaxTime)
	}

	out := t.TempDir()
	if _, err := Train(ctx, tinyTrainConfig(out, 1), nil); err != nil {
		t.Fatal(err)
	}
	res, err = TrainWith(ctx, tinyTrainConfig(out, 1), TrainOptions{Resume: filepath.Join(out, "r")})
	if err != nil || res.Stopped != StoppedAlreadyFinished {
		t.Errorf("resuming a finished run: %+v, %v; want Stopped %q", res, err, StoppedAlreadyFinished)
	}
}
