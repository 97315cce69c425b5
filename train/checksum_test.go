package train_test

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestCheckpointOnAFullDisk: a save that runs out of space (here its last
// file) says so without the temporary paths it was writing, keeps nothing
// of itself, and leaves the checkpoint before it intact.
func TestCheckpointOnAFullDisk(t *testing.T) {
	run, _ := newRun(t, 1)
	root := t.TempDir()
	first, err := train.SaveCheckpoint(root, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := dirFiles(t, first)
	run.State.Step = 2
	full := func(dir string) error {
		return &fs.PathError{Op: "write", Path: filepath.Join(dir, ".adapter.tmp-1"), Err: syscall.ENOSPC}
	}
	_, err = train.SaveCheckpoint(root, run, full)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "the checkpoint of step 2 does not fit in "+root) ||
		!strings.Contains(err.Error(), "the checkpoints before it are intact (the newest: "+train.StepDir(0)+")") || strings.Contains(err.Error(), ".tmp-") {
		t.Fatalf("a full disk: %v", err)
	}
	if _, err := train.SaveCheckpoint(t.TempDir(), run, full); err == nil || !strings.Contains(err.Error(), "no checkpoint was saved before it") {
		t.Errorf("a full disk at the first checkpoint: %v", err)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 || ents[0].Name() != train.StepDir(0) {
		t.Errorf("after the failed save the folder holds %v, want only %s", ents, train.StepDir(0))
	}
	if after := dirFiles(t, first); !maps.Equal(before, after) {
		t.Error("the failed save changed the checkpoint before it")
	}
}

// dirFiles maps each file of dir to its content.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}
