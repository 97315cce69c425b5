//go:build unix

package ftune

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ftune/ftune/track"
)

// TestResumeLockedWritesNothing: a resume refused because another process
// runs the folder (run.lock held) still rewrote its config.yaml with its
// own settings; config.yaml is written only once the lock is held.
func TestResumeLockedWritesNothing(t *testing.T) {
	out := trainedTwoSteps(t)
	dir := filepath.Join(out, "r")
	yamlPath := filepath.Join(dir, "config.yaml")
	orig, err := os.ReadFile(yamlPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "run.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	_, err = TrainWith(context.Background(), tinyTrainConfig(out, 3), TrainOptions{Log: &log, Resume: dir})
	if !errors.Is(err, track.ErrRunLocked) {
		t.Fatalf("resume of a locked run: %v, want ErrRunLocked", err)
	}
	if now, _ := os.ReadFile(yamlPath); !bytes.Equal(now, orig) {
		t.Errorf("a resume refused by the lock rewrote config.yaml")
	}
	if strings.Contains(log.String(), "training.max_steps: 2 → 3") {
		t.Errorf("a resume refused by the lock printed its changes:\n%s", log.String())
	}
}

// TestResumeMayKeepFewerCheckpoints: the full-disk advice is to keep
// fewer checkpoints and resume, which a resume refused as a changed
// setting; keep_last and top_k decide only what is kept.
func TestResumeMayKeepFewerCheckpoints(t *testing.T) {
	out := trainedTwoSteps(t)
	cfg := tinyTrainConfig(out, 3)
	cfg.Training.Checkpointing.KeepLast = 1
	res, err := TrainWith(context.Background(), cfg, TrainOptions{Resume: filepath.Join(out, "r")})
	if err != nil {
		t.Fatalf("resume with keep_last 1: %v", err)
	}
	if res.Steps != 3 {
		t.Errorf("resumed to step %d, want 3", res.Steps)
	}
}
