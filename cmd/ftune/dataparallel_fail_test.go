package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftune/ftune/dist"
)

// jobLimit is how long a failing job may take in these tests: loading
// takes seconds, the collectives' timeout is set far beyond it (10m), so
// a job still running at the limit hangs.
const jobLimit = 90 * time.Second

// twoWorkers is `<mpirun> -np 1 <exe> <args0> : -np 1 <exe> <args1>`:
// one job of two workers with their own command lines (MPMD, which Open
// MPI's and MPICH's mpirun both take), as two machines with their own
// files and options would be.
func twoWorkers(t *testing.T, mpirun string, args0, args1 []string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := dist.MPIRunCommand(mpirun, 1, exe, args0)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Args = append(append(cmd.Args, ":", "-np", "1", exe), args1...)
	return cmd
}

// runJob runs a job to its end or to jobLimit (then it is killed, its
// process group with it) and returns its output, its error and how long
// it took.
func runJob(t *testing.T, cmd *exec.Cmd, env ...string) (string, error, time.Duration) {
	t.Helper()
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Env = append(cmd.Environ(), append([]string{"FTUNE_DIST_TIMEOUT=10m"}, env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return log.String(), err, time.Since(start)
	case <-time.After(jobLimit):
		cmd.Process.Signal(syscall.SIGTERM) // Open MPI's mpirun then ends its workers
		time.Sleep(3 * time.Second)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Fatalf("%v still ran after %v: a hang\n%s", cmd.Args, jobLimit, log.String())
	}
	return "", nil, 0
}

// smallArgs is a short run on the given data (nil: the bundled subjects),
// validating on two batches (one per worker): these tests look at how a
// job fails, not at validation figures.
func smallArgs(out, name string, extra ...string) []string {
	return append([]string{"train", "--max-steps", "3", "--batch-size", "4", "--seq-len", "128", "--eval-questions", "0",
		"--set", "training.log_every=1", "--set", "training.eval.max_batches=2", "--output", out, "--run-name", name, "--no-progress"}, extra...)
}

// writeRows writes n chat examples to a JSONL file, from the first if
// forward, else from the last.
func writeRows(t *testing.T, path string, n int, forward bool) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		k := i
		if !forward {
			k = n - 1 - i
		}
		fmt.Fprintf(&b, `{"messages":[{"role":"user","content":"What is %d plus %d?"},{"role":"assistant","content":"%d"}]}`+"\n", k, k+3, 2*k+3)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWorkerErrorEndsTheJob: an error on one worker outside a collective
// (its data file missing on its machine; rank 0 unable to make the run
// folder) is printed with the worker's rank and ends the whole job within
// seconds, under Open MPI and MPICH. The other worker waits in a
// collective meanwhile; it used to wait until FTUNE_DIST_TIMEOUT (30
// minutes by default) while the failed worker sat in MPI_Finalize, and
// the error was never printed.
//
// The worker left, which Open MPI's mpirun ends with SIGTERM, says so,
// with its rank, and neither that it stops cleanly nor that it aborted the
// job: it printed "ftune: stopping cleanly (press Ctrl-C again to quit at
// once)", and its own MPI_Abort (errorcode 130, after its cancelled
// loading failed) at times made mpirun report "MPI_ABORT was invoked on
// rank 0" where rank 1 had failed.
func TestWorkerErrorEndsTheJob(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	notDir := filepath.Join(dir, "a-file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	openMPI := func(t *testing.T) string { return mpiRun(t, "Open MPI", "mpirun.openmpi", "mpirun") }
	mpich := func(t *testing.T) string { return mpiRun(t, "HYDRA", "mpirun.mpich", "mpiexec.hydra") }
	missing := filepath.Join(dir, "missing.jsonl")
	for _, tc := range []struct {
		name         string
		mpirun       func(t *testing.T) string
		args0, args1 []string
		want         string
		survivor     string // the other worker's line, where it is always printed
	}{
		{"rank 1's data missing, Open MPI", openMPI, smallArgs(dir, "m1"), smallArgs(dir, "m1", "--data", missing),
			"ftune: [rank 1] data.files: stat " + missing,
			"ftune: [rank 0] SIGTERM: this worker stops (a launcher sends it to end the job when it was stopped, or when another worker failed or died)"},
		{"rank 1's data missing, MPICH", mpich, smallArgs(dir, "m2"), smallArgs(dir, "m2", "--data", missing),
			"ftune: [rank 1] data.files: stat " + missing, ""}, // hydra kills it with SIGKILL
		{"rank 0 cannot make its run folder, Open MPI", openMPI, smallArgs(filepath.Join(notDir, "sub"), "m3"), smallArgs(filepath.Join(notDir, "sub"), "m3"),
			"ftune: [rank 0] track: mkdir " + notDir + ": not a directory", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err, took := runJob(t, twoWorkers(t, tc.mpirun(t), tc.args0, tc.args1))
			t.Logf("the job ended after %v with %v", took.Round(time.Millisecond), err)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("the job ended with %v; want a failure and the line %q:\n%s", err, tc.want, out)
			}
			other := map[bool]string{true: "1", false: "0"}[strings.HasPrefix(tc.want, "ftune: [rank 0]")]
			if !strings.Contains(out, tc.survivor) || strings.Contains(out, "stopping cleanly") || strings.Contains(out, "Ctrl-C again") ||
				strings.Contains(out, "MPI_ABORT was invoked on rank "+other) {
				t.Errorf("want the other worker's line %q, and neither a clean stop promised nor an abort of its own reported:\n%s", tc.survivor, out)
			}
		})
	}
}

// TestCollectiveTimeoutIsPrinted: a worker that stops answering (SIGSTOP)
// makes the other's collective time out after FTUNE_DIST_TIMEOUT; that
// worker prints the timeout, with its rank, before the abort ends the
// job. The abort used to run inside the deferred Close, before the error
// reached the line that prints it.
func TestCollectiveTimeoutIsPrinted(t *testing.T) {
	mpirun := mpiRun(t, "Open MPI", "mpirun.openmpi", "mpirun")
	t.Setenv("FTUNE_CACHE", t.TempDir())
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := mpiCommand(t, mpirun, exe, smallArgs(t.TempDir(), "hung", "--max-steps", "40"))
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Env = append(cmd.Environ(), "FTUNE_DIST_TIMEOUT=6s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill() // on a failed check below
	deadline := time.Now().Add(jobLimit)
	for !strings.Contains(log.String(), "step     1 ") {
		if time.Now().After(deadline) {
			t.Fatalf("no step 1 after %v:\n%s", jobLimit, log.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("the job ended (%v) before step 1:\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	pid := childWithEnv(t, cmd.Process.Pid, "OMPI_COMM_WORLD_RANK=1")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	select {
	case err = <-exited:
	case <-time.After(jobLimit):
		t.Fatalf("the job still runs %v after rank 1 was stopped:\n%s", jobLimit, log.String())
	}
	out := log.String()
	want := "did not complete within 6s: another worker is hung or dead"
	if err == nil || !strings.Contains(out, "ftune: [rank 0] ") || !strings.Contains(out, want) {
		t.Errorf("the job ended with %v; want rank 0's error line saying %q:\n%s", err, want, out)
	}
}

// TestWorkersThatDifferRefuseToTrain: workers started with different
// options, data or base (each machine its own command line and files)
// refuse to train before step 1, rank 0 saying which rank differs and in
// what, and the job ends without an abort (every worker returns the
// error after the same collectives, so they finalise together). They
// used to train a mix of the runs to completion without a word (a
// learning rate, a data file, a base), or to end in an MPI_ABORT with no
// reason after training on diverged schedules (max_steps; an epoch-based
// run on data of different sizes).
func TestWorkersThatDifferRefuseToTrain(t *testing.T) {
	mpirun := mpiRun(t, "Open MPI", "mpirun.openmpi", "mpirun")
	t.Setenv("FTUNE_CACHE", t.TempDir())
	dir := t.TempDir()
	// Files of one name (the subject's) in three folders, as on three
	// machines: the content differs, not the name.
	var files []string
	for _, sub := range []string{"a", "b", "c"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(dir, sub, "rows.jsonl"))
	}
	rows, shuffled, fewer := files[0], files[1], files[2]
	writeRows(t, rows, 60, true)
	writeRows(t, shuffled, 60, false)
	writeRows(t, fewer, 30, true)
	other := otherBase(t, filepath.Join(dir, "other-base"))
	for _, tc := range []struct {
		name   string
		data1  string   // rank 1's data file (rank 0's is rows)
		extra  []string // both workers'
		extra1 []string // rank 1's, after them (the last of a flag counts)
		want   string
	}{
		{"learning rate", rows, nil, []string{"--lr", "0.02"}, "the configurations differ: rank 1's training.optimizer.lr 0.02, rank 0's 0.002"},
		{"max steps", rows, nil, []string{"--max-steps", "5"}, "rank 1's training.max_steps 5, rank 0's 3"},
		{"data order", shuffled, nil, nil, "the training data differ"},
		{"epochs over data of different sizes", fewer, []string{"--max-steps", "0", "--set", "training.max_epochs=2"}, nil, "the training data differ"},
		{"base", rows, nil, []string{"--model", other}, "the base models (ftune-base-v1 fingerprints) differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			args0 := smallArgs(dir, name, append([]string{"--data", rows}, tc.extra...)...)
			args1 := append(smallArgs(dir, name, append([]string{"--data", tc.data1}, tc.extra...)...), tc.extra1...)
			out, err, took := runJob(t, twoWorkers(t, mpirun, args0, args1))
			t.Logf("refused after %v", took.Round(time.Millisecond))
			line := "ftune: [rank 0] train: rank 1 differs from rank 0 before training: "
			if err == nil || !strings.Contains(out, line) || !strings.Contains(out, tc.want) {
				t.Errorf("the job ended with %v; want rank 0's line %q saying %q:\n%s", err, line, tc.want, out)
			}
			if strings.Contains(out, "step     1 ") || strings.Contains(out, "MPI_ABORT") || strings.Count(out, "differs from rank 0") != 1 {
				t.Errorf("want no step trained, no abort and the error printed once:\n%s", out)
			}
		})
	}
}
