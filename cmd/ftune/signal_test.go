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
// context (a clean stop); the second exits at once with status 130. A
// signal within oneStopWindow of the first is the same stop sent twice
// (GNU timeout signals the process and then its group): it exited, losing
// the checkpoint the clean stop was saving.
func TestSecondSignalForcesExit(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	cancelled := make(chan struct{})
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	go onSignals(sigs, func() { close(cancelled) }, &stderr, func(code int) { exited <- code }, workerOf(func(string) string { return "" }))
	sigs <- os.Interrupt
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel the context")
	}
	sigs <- os.Interrupt // the same stop again at once (timeout signals the process, then its group)
	select {
	case code := <-exited:
		t.Fatalf("exited (%d) on the first stop, signalled twice within %v", code, oneStopWindow)
	case <-time.After(oneStopWindow + 50*time.Millisecond):
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

// TestWorkerSignalIsTheLaunchers: a worker of a job of several (Open
// MPI's, MPICH's variables; Slurm's) reads its first signal as the
// launcher ending the job, which happens when the user stops it and when
// another worker failed or died: its line names the signal and both, with
// its rank, and neither promises a clean stop nor asks for a second Ctrl-C
// (a Ctrl-C at the terminal reaches mpirun, not the worker). The context
// is cancelled and a second signal exits 130 as for one process. It
// printed "stopping cleanly (press Ctrl-C again to quit at once)" after
// another worker's MPI_Abort. A job of one worker is one process.
func TestWorkerSignalIsTheLaunchers(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		sig  os.Signal
		want string // "" for one process's lines
	}{
		{map[string]string{"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}, syscall.SIGTERM,
			"\nftune: [rank 1] SIGTERM: this worker stops (a launcher sends it to end the job when it was stopped, or when another worker failed or died)\nftune: [rank 1] SIGTERM again: quitting now (work since the last checkpoint is lost)\n"},
		{map[string]string{"PMI_RANK": "0", "PMI_SIZE": "4"}, os.Interrupt, "ftune: [rank 0] SIGINT: this worker stops (a launcher sends it"},
		{map[string]string{"SLURM_PROCID": "3", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4"}, syscall.SIGTERM, "ftune: [rank 3] SIGTERM: "},
		{map[string]string{"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1"}, syscall.SIGTERM, ""},
		{nil, os.Interrupt, ""},
	} {
		sigs := make(chan os.Signal, 2)
		cancelled := make(chan struct{})
		exited := make(chan int, 1)
		var stderr lockedBuffer
		w := workerOf(func(k string) string { return c.env[k] })
		go onSignals(sigs, func() { close(cancelled) }, &stderr, func(code int) { exited <- code }, w)
		sigs <- c.sig
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Fatalf("%v: the first signal did not cancel the context", c.env)
		}
		time.Sleep(oneStopWindow) // a second stop, not the first one's echo
		sigs <- c.sig
		select {
		case code := <-exited:
			if code != exitInterrupted {
				t.Errorf("%v: exit status %d, want %d", c.env, code, exitInterrupted)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v: the second signal did not force an exit", c.env)
		}
		got := stderr.String()
		switch {
		case c.want == "" && got != "\nftune: stopping cleanly (press Ctrl-C again to quit at once)\nftune: interrupted twice: quitting now (work since the last checkpoint is lost)\n":
			t.Errorf("%v: one process printed %q; want its lines unchanged", c.env, got)
		case c.want != "" && (!strings.Contains(got, c.want) || strings.Contains(got, "cleanly") || strings.Contains(got, "Ctrl-C")):
			t.Errorf("%v: printed %q; want %q, and no clean stop nor Ctrl-C promised", c.env, got, c.want)
		}
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
