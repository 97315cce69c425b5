package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// cancelOnWrite is a command's output that cancels its context (as the
// first Ctrl-C does) once the output holds a line with mark.
type cancelOnWrite struct {
	lockedBuffer
	mark   string
	cancel func()
	once   sync.Once
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	n, err := c.lockedBuffer.Write(p)
	if strings.Contains(c.String(), c.mark) {
		c.once.Do(c.cancel)
	}
	return n, err
}

// TestInterruptAfterTheLastStep: a Ctrl-C after the last step trained (in
// its validation or checkpoint) skipped the evaluation and the adapter
// export, and said "interrupted after step 1; the checkpoint is saved",
// then "finished 1 steps": the run was not finished (its folder says
// interrupted, and resuming it exports the adapter). It says interrupted,
// and exits 130 without an error line.
func TestInterruptAfterTheLastStep(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{mark: "step     1  val loss", cancel: cancel}
	root := newRoot()
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs([]string{"train", "--max-steps", "1", "--output", outDir, "--run-name", "r", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0",
		"--set", "training.eval.generation.samples=0", "--set", "training.checkpointing.every=1", "--set", "training.eval.max_batches=2", "--no-progress"})
	// Saved, and still not done: exit status 130, no error line (it
	// exited 0, and `ftune train && ftune export` went on).
	if code := execute(ctx, root, out); code != exitInterrupted {
		t.Fatalf("exit status %d, want %d\n%s", code, exitInterrupted, out.String())
	}
	got := out.String()
	if ctx.Err() == nil {
		t.Fatalf("no line %q to interrupt at:\n%s", out.mark, got)
	}
	ck := filepath.Join(outDir, "r", "checkpoints", "step-00000001")
	if !strings.Contains(got, "interrupted after step 1; the checkpoint is saved ("+ck+")") {
		t.Fatalf("no checkpoint reported:\n%s", got)
	}
	if strings.Contains(got, "finished") || !strings.Contains(got, "\ninterrupted after 1 steps") {
		t.Errorf("an interrupted run reported as finished:\n%s", got)
	}
	if strings.Contains(got, "ftune: exit status") {
		t.Errorf("an error line for the status:\n%s", got)
	}
}
