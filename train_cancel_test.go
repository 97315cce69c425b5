package ftune

import (
	"context"
	"errors"
	"fmt"
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
	log    strings.Builder
}

func (w *cancelAtLine) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(p), w.at) {
		w.cancel()
	}
	return w.log.Write(p)
}

// trainCancelledAt runs a 3-step tiny run with opt cancelled when its log
// reaches the line at, and returns the log too.
func trainCancelledAt(t *testing.T, at string, opt TrainOptions) (*TrainResult, string, error) {
	t.Helper()
	cfg := tinyTrainConfig(t.TempDir(), 3)
	cfg.Training.LogEvery = 1
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelAtLine{at: at, cancel: cancel}
	opt.Log = w
	res, err := TrainWith(ctx, cfg, opt)
	return res, w.log.String(), err
}

// TestTrainCancelledAfterAStepReturnsTheResult: cancelled once a step was
// trained, Train returns the run's result, Stopped StoppedInterrupted,
// with a nil error, the step's checkpoint in the run folder to resume
// from. The log says how to resume in the caller's terms: the Go field,
// or what TrainOptions.ResumeHint says (the ftune command's command line);
// it used to print "<this program> train --resume DIR", a command the
// program embedding ftune does not have.
func TestTrainCancelledAfterAStepReturnsTheResult(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	for _, c := range []struct {
		name string
		hint func(string) string
		want string // %s: the run folder
	}{
		{"embedded", nil, `resume it with TrainOptions.Resume = "%s"`},
		{"command", func(dir string) string { return "mytool resume " + dir }, "mytool resume %s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, log, err := trainCancelledAt(t, "step     1  loss", TrainOptions{ResumeHint: c.hint})
			if err != nil || res == nil {
				t.Fatalf("cancelled after step 1: result %v, err %v; want the result and no error", res, err)
			}
			if res.Stopped != StoppedInterrupted || res.Steps != 1 {
				t.Errorf("stopped %q at step %d, want interrupted at 1", res.Stopped, res.Steps)
			}
			if _, err := os.Stat(filepath.Join(res.RunDir, "checkpoints", "step-00000001")); err != nil {
				t.Errorf("no checkpoint to resume from: %v", err)
			}
			if want := fmt.Sprintf(c.want, res.RunDir); !strings.Contains(log, "the checkpoint is saved") || !strings.Contains(log, want) || strings.Contains(log, "train --resume") {
				t.Errorf("the log does not say %q (nor only that):\n%s", want, log)
			}
		})
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
			res, _, err := trainCancelledAt(t, c.at, TrainOptions{})
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
