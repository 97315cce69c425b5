//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// namedPipe makes a named pipe nobody writes. At the end of the test it is
// opened for writing once and closed, which lets a reader that a failing
// test left blocked in open(2) go on (it then reads an empty file).
func namedPipe(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	return path
}

// runInterrupted runs a command line in-process and cancels its context
// after a while (after: long enough to reach the read under test), as the
// first Ctrl-C does (main's onSignals). A command
// blocked where a context does not reach (open or read of a named pipe
// in the kernel) does not return: the test fails after a few seconds
// instead of hanging.
func runInterrupted(t *testing.T, after time.Duration, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runCtx(t, ctx, args...)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-time.After(after):
	}
	cancel()
	select {
	case r := <-done:
		return r.out, r.err
	case <-time.After(5 * time.Second):
		t.Fatalf("%v: still running 5s after the first Ctrl-C (a read nobody can cancel)", args)
		return "", nil
	}
}

// TestInterruptNamedPipeInputs: a named pipe nobody writes, given where
// ftune reads a file, blocked the open itself, where the first Ctrl-C
// (a cancelled context) does not reach: only a second one ended the
// process. The readers that opened their file with os.Open (imatrix
// --text, export --imatrix, a subject folder's subject.yaml) refuse it at
// once, naming it, as the data and model readers already did.
func TestInterruptNamedPipeInputs(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	pipe := namedPipe(t, filepath.Join(dir, "pipe.txt"))
	subjects := filepath.Join(dir, "subjects")
	if err := os.MkdirAll(filepath.Join(subjects, "geo"), 0o755); err != nil {
		t.Fatal(err)
	}
	rows := strings.Repeat(`{"prompt":"Capital of France?","completion":"Paris"}`+"\n", 20)
	if err := os.WriteFile(filepath.Join(subjects, "geo", "train.jsonl"), []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	namedPipe(t, filepath.Join(subjects, "geo", "subject.yaml"))
	for _, args := range [][]string{
		{"imatrix", "--text", pipe, "--out", filepath.Join(dir, "im.gguf")},
		{"export", "--format", "gguf", "--quant", "q4_k_m", "--imatrix", pipe, "--out", filepath.Join(dir, "m.gguf")},
		{"data", "validate", "--data-root", subjects},
	} {
		start := time.Now()
		out, err := runInterrupted(t, 2*time.Second, args...)
		if err == nil || !strings.Contains(err.Error(), "is a named pipe") {
			t.Errorf("%v: %v\n%s\nwant the named pipe refused", args[0], err, out)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%v: took %v", args[0], d)
		}
	}
	for _, f := range []string{"im.gguf", "m.gguf"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s was written", f)
		}
	}
}

// TestInterruptResumeNamedPipeCheckpoint: a run folder may come from
// anywhere; a named pipe as a checkpoint's checksums.sha256 blocked
// train --resume in open(2), deaf to Ctrl-C. The checkpoint is reported
// unusable, naming the pipe, and the resume goes on without it.
func TestInterruptResumeNamedPipeCheckpoint(t *testing.T) {
	dir, _, _ := oneStepRun(t)
	sums := filepath.Join(dir, "checkpoints", "step-00000001", "checksums.sha256")
	if err := os.Remove(sums); err != nil {
		t.Fatal(err)
	}
	namedPipe(t, sums)
	out, _ := runInterrupted(t, 5*time.Second, "train", "--resume", dir, "--max-steps", "2", "--no-progress")
	if !strings.Contains(out, "checksums.sha256 is a named pipe") || !strings.Contains(out, "unusable") {
		t.Fatalf("the pipe is not reported as making the checkpoint unusable:\n%s", out)
	}
}
