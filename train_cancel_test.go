package ftune

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// cancelAtLine is a log that cancels its context when a line containing
// at is written: an interruption at a known point of a run.
type cancelAtLine struct {
	mu     sync.Mutex
	at     string
	cancel context.CancelFunc
}

func (w *cancelAtLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(p), w.at) {
		w.cancel()
	}
	return len(p), nil
}

// trainCancelledAt runs a 3-step tiny run cancelled when its log reaches
// the line at.
func trainCancelledAt(t *testing.T, at string) (*TrainResult, error) {
	t.Helper()
	cfg := tinyTrainConfig(t.TempDir(), 3)
	cfg.Training.LogEvery = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	return Train(ctx, cfg, &cancelAtLine{at: at, cancel: cancel})
}

// TestTrainCancelledAfterAStepReturnsTheResult: cancelled once a step was
// trained, Train returns the run's result, Stopped "interrupted", with a
// nil error, the step's checkpoint in the run folder to resume from.
func TestTrainCancelledAfterAStepReturnsTheResult(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	res, err := trainCancelledAt(t, "step     1  loss")
	if err != nil || res == nil {
		t.Fatalf("cancelled after step 1: result %v, err %v; want the result and no error", res, err)
	}
	if res.Stopped != "interrupted" || res.Steps != 1 {
		t.Errorf("stopped %q at step %d, want interrupted at 1", res.Stopped, res.Steps)
	}
	if _, err := os.Stat(filepath.Join(res.RunDir, "checkpoints", "step-00000001")); err != nil {
		t.Errorf("no checkpoint to resume from: %v", err)
	}
}

// TestTrainCancelledBeforeAStepIsAnError: cancelled before a step was
// trained, Train used to return an error while loading, but a result with
// a nil error (Stopped "interrupted", 0 steps, no checkpoint) once the run
// folder was made: during the evaluation before training or before the
// first step ended. Every such cancellation now gives a nil result and an
// error wrapping context.Canceled, naming the run folder where one was
// made.
func TestTrainCancelledBeforeAStepIsAnError(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	for _, c := range []struct{ name, at, folder string }{
		{"while loading", "device:", ""},
		{"evaluation before training", "== before training", "holds no checkpoint"},
		{"before the first step", "== training:", "holds no checkpoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := trainCancelledAt(t, c.at)
			if res != nil || !errors.Is(err, context.Canceled) {
				t.Fatalf("result %+v, err %v; want no result and an error wrapping context.Canceled", res, err)
			}
			if !strings.Contains(err.Error(), c.folder) {
				t.Errorf("error %q lacks %q", err, c.folder)
			}
		})
	}
}

// TestTrainResumeCancelledBeforeItStarts: a resume with a ctx cancelled
// before the call is refused before anything, the run folder's
// config.yaml untouched (checkResume rewrites it for a changed max_steps).
func TestTrainResumeCancelledBeforeItStarts(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out := t.TempDir()
	if _, err := Train(context.Background(), tinyTrainConfig(out, 1), nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, "r")
	yaml := filepath.Join(dir, "config.yaml")
	before, err := os.ReadFile(yaml)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := TrainWith(ctx, tinyTrainConfig(out, 2), TrainOptions{Resume: dir})
	if res != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("result %+v, err %v; want no result and an error wrapping context.Canceled", res, err)
	}
	if after, _ := os.ReadFile(yaml); string(after) != string(before) {
		t.Errorf("a cancelled resume rewrote %s", yaml)
	}
}
