//go:build unix

package track

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunLockInProcess: a second open of a run folder (its own file
// descriptor, as a second process would have) is refused while the first
// holds it, with an error naming the holder, and succeeds once it closed.
func TestRunLockInProcess(t *testing.T) {
	root := t.TempDir()
	r, err := NewRun(root, "x", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	_, err = ResumeRun(r.Dir, 0, WithTensorBoard(false))
	if !errors.Is(err, ErrRunLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())+" on "+host) {
		t.Fatalf("second open: %v, want ErrRunLocked naming this process", err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, SummaryFile)); err == nil {
		t.Error("the refused open wrote summary.json into the other's run")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := ResumeRun(r.Dir, 0, WithTensorBoard(false))
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	again.Close()
}

// TestRunLockTwoProcesses: another process holding the run folder keeps
// this one out (the error names its pid); once it is killed with SIGKILL
// its lock is taken over.
func TestRunLockTwoProcesses(t *testing.T) {
	root := t.TempDir()
	r, err := NewRun(root, "x", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "FTUNE_TEST_HOLD_RUN="+r.Dir)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	_, err = ResumeRun(r.Dir, 0, WithTensorBoard(false))
	if !errors.Is(err, ErrRunLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(child.Process.Pid)+" ") {
		t.Fatalf("open while process %d holds the run: %v", child.Process.Pid, err)
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL: no Close, no summary
		t.Fatal(err)
	}
	_ = child.Wait()
	if s, _ := Summarize(r.Dir); s.Status != StatusDied {
		t.Errorf("killed holder's run is %q, want died", s.Status)
	}
	taken, err := ResumeRun(r.Dir, 0, WithTensorBoard(false))
	if err != nil {
		t.Fatalf("stale lock of a killed process not taken over: %v", err)
	}
	defer taken.Close()
	if h, _ := readHolder(r.Dir); h.PID != os.Getpid() {
		t.Errorf("lock file names pid %d, want this process %d", h.PID, os.Getpid())
	}
}

// TestMain doubles as the other process of TestRunLockTwoProcesses: with
// FTUNE_TEST_HOLD_RUN set, it opens that run and holds it until killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FTUNE_TEST_HOLD_RUN"); dir != "" {
		if _, err := ResumeRun(dir, 0, WithTensorBoard(false)); err != nil {
			os.Stdout.WriteString("error: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("holding\n")
		time.Sleep(time.Minute)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// TestZombieIsNotAlive: a killed process its parent has not reaped yet
// (a zombie) counts as gone: `runs list` says "died" at once after kill -9.
func TestZombieIsNotAlive(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here: zombies cannot be told apart")
	}
	r, err := NewRun(t.TempDir(), "z", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), "FTUNE_TEST_HOLD_RUN="+r.Dir)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	if !processAlive(child.Process.Pid) {
		t.Fatal("a running child is not alive")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(child.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("a killed, unreaped child still counts as alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestResumeRestoresUnderLock: the checkpoint is restored with the lock
// held (a second process cannot prune or write meanwhile), and a failed
// restore leaves the folder as it was, unlocked.
func TestResumeRestoresUnderLock(t *testing.T) {
	r, err := NewRun(t.TempDir(), "x", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.End(StatusInterrupted, ""); err != nil {
		t.Fatal(err)
	}
	_, err = ResumeRunFrom(r.Dir, func() (int, error) {
		if _, err := ResumeRun(r.Dir, 0, WithTensorBoard(false)); !errors.Is(err, ErrRunLocked) {
			t.Errorf("open during restore: %v, want ErrRunLocked", err)
		}
		return 0, errors.New("no usable checkpoint")
	}, WithTensorBoard(false))
	if err == nil || err.Error() != "no usable checkpoint" {
		t.Fatalf("failed restore: %v", err)
	}
	if s, _ := Summarize(r.Dir); s.Status != StatusInterrupted {
		t.Errorf("a failed restore changed the status to %q", s.StatusText())
	}
	again, err := ResumeRun(r.Dir, 0, WithTensorBoard(false))
	if err != nil {
		t.Fatalf("lock not released after a failed restore: %v", err)
	}
	again.Close()
}
