package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalForcesExit: the first Ctrl-C cancels the command's
// context (a clean stop); the second exits at once with status 130.
func TestSecondSignalForcesExit(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	cancelled := make(chan struct{})
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	go onSignals(sigs, func() { close(cancelled) }, &stderr, func(code int) { exited <- code })
	sigs <- os.Interrupt
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("exited (%d) on the first signal", code)
	default:
	}
	sigs <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 130 {
			t.Errorf("exit status %d, want 130", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not force an exit")
	}
	if s := stderr.String(); !strings.Contains(s, "Ctrl-C again") || !strings.Contains(s, "quitting now") {
		t.Errorf("messages: %q", s)
	}
}

// TestExitCode: bad usage exits 2; a command stopped by Ctrl-C with an
// error (an evaluation or export cut short) exits 130 as the shell reports
// an interrupted program; any other error 1, also a context error that no
// signal caused.
func TestExitCode(t *testing.T) {
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	cut := fmt.Errorf("export: stopped before model.layers.3.mlp.up_proj.weight: %w", context.Canceled)
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want int
	}{
		{context.Background(), usageError{errors.New("--max-tokens 0: want at least 1")}, 2},
		{stopped, cut, exitInterrupted},
		{context.Background(), cut, 1},
		{stopped, errors.New("export: the output holds files that no ftune export wrote"), 1},
	} {
		if got := exitCode(c.ctx, c.err); got != c.want {
			t.Errorf("exitCode(cancelled %v, %v) = %d, want %d", c.ctx.Err() != nil, c.err, got, c.want)
		}
	}
}
