package main

import (
	"bytes"
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
