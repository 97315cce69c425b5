package train_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/train"
)

// TestAlteredCheckpointRefused: a checkpoint whose tensor data was changed
// (the file still parses) is refused, naming the file, and resume falls
// back to the previous checkpoint, saying so.
func TestAlteredCheckpointRefused(t *testing.T) {
	run, _ := newRun(t, 4)
	dir := t.TempDir()
	run.Callbacks = []train.Callback{&train.Checkpointer{Dir: dir, Every: 2, KeepLast: 5}}
	if err := run.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := train.Checkpoints(dir)
	if len(all) != 2 {
		t.Fatalf("checkpoints %v, want steps 2 and 4", all)
	}
	params := filepath.Join(all[1], "params.safetensors")
	data, err := os.ReadFile(params)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-2] ^= 0x10 // a bit of the last tensor's last value
	if err := os.WriteFile(params, data, 0o644); err != nil {
		t.Fatal(err)
	}
	again, _ := newRun(t, 4)
	err = train.LoadCheckpoint(all[1], again)
	if !errors.Is(err, train.ErrChecksum) || !strings.Contains(err.Error(), "params.safetensors") {
		t.Fatalf("altered checkpoint: %v, want a checksum error naming params.safetensors", err)
	}
	var warned string
	got, err := train.ResumeLatest(dir, again, func(s string) { warned = s })
	if err != nil {
		t.Fatal(err)
	}
	if got != all[0] || again.State.Step != 2 || !strings.Contains(warned, "params.safetensors") || !strings.Contains(warned, "previous") {
		t.Fatalf("resumed from %s at step %d (warning %q), want %s at step 2", got, again.State.Step, warned, all[0])
	}
}
