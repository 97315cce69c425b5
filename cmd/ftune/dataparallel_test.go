package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/shell"
	"github.com/ftune/ftune/train"
)

// TestMain makes the test binary act as the ftune program when its first
// argument is a command rather than a test flag (go test passes only
// -test.* flags). This is how `--nproc-per-node`, which relaunches this
// executable under mpirun with the same arguments, is tested end to end
// without building a second binary (mpirun does not forward every
// environment variable, so the arguments are the signal).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// dpArgs is a short `ftune train` with gradient accumulation (two
// micro-batches a step, so each of two workers runs one) and packing (the
// main job's default), the default optimizer (AdamW) and a log line per
// step. Rows of 64 tokens, and validation on two batches, one per worker
// (so the workers still share it): the tests compare training losses and
// adapters, which do not depend on either, and the default 64 batches
// cost more than the 3 steps.
func dpArgs(out string, extra ...string) []string {
	return append([]string{"train", "--max-steps", "3", "--batch-size", "4", "--seq-len", "64", "--eval-questions", "0",
		"--set", "training.grad_accum=2", "--set", "training.log_every=1", "--set", "training.eval.max_batches=2",
		"--output", out, "--no-progress"}, extra...)
}

// mpiRun finds the mpirun of a flavour ("Open MPI" or "HYDRA", as its
// --version says) or skips naming what to install.
func mpiRun(t *testing.T, flavor string, names ...string) string {
	t.Helper()
	for _, name := range names {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if v, _ := exec.Command(path, "--version").CombinedOutput(); strings.Contains(string(v), flavor) {
			return path
		}
	}
	t.Skipf("no %s mpirun among %v: apt-get install openmpi-bin (CI installs it) or mpich", flavor, names)
	return ""
}

// TestTwoWorkersMatchOneProcess: `ftune train` as two workers gives the
// per-step losses of one process within 1e-5 relative and the same adapter
// tensors within 1e-5 (they are in fact bit for bit equal: with grad_accum
// a multiple of the workers each runs whole micro-batches and the step's
// sum is one process's, train/distributed_accum.go), with gradient
// accumulation and packing, with per-subject adapters, started by
// `--nproc-per-node 2`, by Open MPI's `mpirun --oversubscribe -np 2` and
// by MPICH's `mpirun.mpich -np 2` directly, with gradient buckets
// all-reduced during the backward. Only rank 0 writes the run folder, and
// env.json names the world and the engine.
//
// grad_accum not a multiple of the workers splits each micro-batch's rows
// instead; that is not bit-exact (a weight gradient's sum over the
// micro-batch's tokens is split in two) and is checked in recipe's
// TestDataParallelAdamW.
// mpiJob is what a test of ftune train under mpirun starts from: this test
// binary, which runs as ftune (TestMain), a model cache of its own and an
// output folder. Without mpirun the test is skipped (CI installs it).
func mpiJob(t *testing.T) (exe, out string) {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Skip("mpirun not found: apt-get install openmpi-bin (CI installs it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FTUNE_CACHE", t.TempDir())
	return exe, t.TempDir()
}

func TestTwoWorkersMatchOneProcess(t *testing.T) {
	exe, out := mpiJob(t)
	oneProcess := map[string]string{} // run folder of one process, by extra arguments
	for _, tc := range []struct {
		name, engine string
		extra        []string
		workers      func(t *testing.T, args []string) *exec.Cmd
	}{
		{"nproc-per-node, accumulation and packing", "mpi:Open MPI", nil, func(t *testing.T, args []string) *exec.Cmd {
			return exec.Command(exe, append(args, "--nproc-per-node", "2")...)
		}},
		{"mpirun, per-subject adapters", "mpi:Open MPI", []string{"--set", "training.adapters=per-subject"}, func(t *testing.T, args []string) *exec.Cmd {
			return mpiCommand(t, mpiRun(t, "Open MPI", "mpirun.openmpi", "mpirun"), exe, args)
		}},
		{"mpich, accumulation and packing", "mpi:MPICH", nil, func(t *testing.T, args []string) *exec.Cmd {
			return mpiCommand(t, mpiRun(t, "HYDRA", "mpirun.mpich", "mpiexec.hydra"), exe, args)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)
			cmd := tc.workers(t, dpArgs(out, append(tc.extra, "--run-name", name)...))
			// Buckets of 64 KiB: the 1.8 MB adapter goes in many, all-reduced
			// during the backward from the second step on (through each MPI's
			// MPI_Iallreduce).
			cmd.Env = append(cmd.Environ(), "FTUNE_DIST_BUCKET_MB=0.0625")
			two, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, two)
			}
			key := strings.Join(tc.extra, " ")
			if oneProcess[key] == "" {
				oneProcess[key] = "one" + fmt.Sprint(len(oneProcess))
				if msg, err := run(t, dpArgs(out, append(tc.extra, "--run-name", oneProcess[key])...)...); err != nil {
					t.Fatalf("one process: %v\n%s", err, msg)
				}
			}
			one, many := filepath.Join(out, oneProcess[key]), filepath.Join(out, name)
			l1, l2 := stepLosses(t, one), stepLosses(t, many)
			if len(l1) != 3 || len(l2) != len(l1) {
				t.Fatalf("logged losses: one process %v, two workers %v", l1, l2)
			}
			for i := range l1 {
				if rel := math.Abs(l1[i]-l2[i]) / math.Abs(l1[i]); rel > 1e-5 {
					t.Errorf("step %d: loss %.8f with one process, %.8f with two workers (relative %.2g)", i+1, l1[i], l2[i], rel)
				}
			}
			relFro, elem := adapterDifference(t, adapterTensors(t, one), adapterTensors(t, many))
			t.Logf("losses %v; adapters: worst relative Frobenius difference %.2g, worst element %.2g", l1, relFro, elem)
			if relFro > 1e-5 || elem > 1e-5 {
				t.Errorf("adapters differ between one process and two workers: relative Frobenius %.2g, element %.2g (bound 1e-5)", relFro, elem)
			}
			for _, line := range strings.Split(string(two), "\n") {
				if strings.HasPrefix(line, "[rank 1]") && (strings.Contains(line, "run folder:") || strings.Contains(line, "adapter ")) {
					t.Errorf("rank 1 reported a run folder or an adapter: %s", line)
				}
			}
			var env struct {
				WorldSize int    `json:"world_size"`
				Engine    string `json:"engine"`
			}
			raw, err := os.ReadFile(filepath.Join(many, "env.json"))
			if err != nil || json.Unmarshal(raw, &env) != nil || env.WorldSize != 2 || !strings.HasPrefix(env.Engine, tc.engine) {
				t.Errorf("env.json of the two-worker run: world_size %d, engine %q (want %s...) (%v)", env.WorldSize, env.Engine, tc.engine, err)
			}
		})
	}
}

// mpiCommand is `<mpirun> -np 2 <exe> <args>` with what mpirun's flavour
// needs (dist.MPIRunCommand, as --nproc-per-node uses).
func mpiCommand(t *testing.T, mpirun, exe string, args []string) *exec.Cmd {
	t.Helper()
	cmd, err := dist.MPIRunCommand(mpirun, 2, exe, args)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// adapterDifference is the worst per-tensor relative Frobenius difference
// and the worst element difference between two adapters.
func adapterDifference(t *testing.T, a, b map[string][]float32) (relFro, elem float64) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("adapters hold %d and %d tensors", len(a), len(b))
	}
	for name, v := range a {
		w, ok := b[name]
		if !ok || len(w) != len(v) {
			t.Fatalf("adapter tensor %s missing or resized", name)
		}
		var d, n float64
		for i := range v {
			diff := float64(v[i]) - float64(w[i])
			d += diff * diff
			n += float64(v[i]) * float64(v[i])
			elem = max(elem, math.Abs(diff))
		}
		if n > 0 {
			relFro = max(relFro, math.Sqrt(d/n))
		}
	}
	return relFro, elem
}

// stepLosses reads train/loss per step from a run's metrics.jsonl.
func stepLosses(t *testing.T, run string) []float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Metrics map[string]float64 `json:"metrics"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		if v, ok := line.Metrics["train/loss"]; ok {
			out = append(out, v)
		}
	}
	return out
}

// adapterTensors reads a run's exported adapters (one, or one per subject)
// as float32 by "folder/tensor name".
func adapterTensors(t *testing.T, run string) map[string][]float32 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(run, "adapter", "adapter_model.safetensors"))
	more, _ := filepath.Glob(filepath.Join(run, "adapters", "*", "adapter_model.safetensors"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatalf("%s: no exported adapter", run)
	}
	out := map[string][]float32{}
	for _, file := range files {
		f, err := safetensors.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		dir, _ := filepath.Rel(run, filepath.Dir(file))
		for _, name := range f.Names() {
			tt, err := f.Tensor(name)
			if err != nil {
				t.Fatal(err)
			}
			if out[dir+"/"+name], err = safetensors.Floats(tt); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	return out
}

// TestKilledWorkerEndsTrainAndResumeContinues: SIGKILL to rank 1 in the
// middle of `mpirun -np 2 ftune train` (Open MPI) ends the whole job
// within seconds, with mpirun naming the dead rank, not a hang. The
// checkpoints rank 0 wrote before (atomically: a folder appears only when
// complete) stay usable: `ftune train --resume` on one process continues
// from the last one with the next steps' losses and the adapters that an
// uninterrupted one-process run reaches, within 1e-5.
func TestKilledWorkerEndsTrainAndResumeContinues(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("finds rank 1's process in /proc (Linux only)")
	}
	mpirun := mpiRun(t, "Open MPI", "mpirun.openmpi", "mpirun")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out := t.TempDir()
	// A constant learning rate: the resumed and the reference runs stop
	// earlier than the killed one, and a schedule would depend on that.
	steady := []string{"--set", "training.schedule.name=constant", "--set", "training.schedule.warmup_steps=0", "--set", "training.checkpointing.every=2"}
	killed := filepath.Join(out, "killed")
	cmd := mpiCommand(t, mpirun, exe, dpArgs(out, append(steady, "--run-name", "killed", "--max-steps", "40")...))
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill() // on a failed check below

	// Kill rank 1 once rank 0 has written the step-2 checkpoint.
	deadline := time.Now().Add(2 * time.Minute)
	for !exists(filepath.Join(killed, "checkpoints", "step-00000002")) {
		if time.Now().After(deadline) {
			t.Fatalf("no step-2 checkpoint after 2 minutes:\n%s", log.String())
		}
		select {
		case err := <-exited:
			t.Fatalf("the job ended (%v) before its step-2 checkpoint:\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	pid := childWithEnv(t, cmd.Process.Pid, "OMPI_COMM_WORLD_RANK=1")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	select {
	case err = <-exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("the job still runs 60 s after rank 1 was killed: a hang\n%s", log.String())
	}
	took := time.Since(killedAt)
	msg := log.String()
	if err == nil || !strings.Contains(msg, "rank 1") || !strings.Contains(msg, "signal 9") {
		t.Fatalf("after killing rank 1 the job exited with %v; want an error naming rank 1 and signal 9:\n%s", err, msg)
	}
	t.Logf("rank 1 killed: the job ended %v later with %v", took.Round(time.Millisecond), err)

	cks := train.Checkpoints(filepath.Join(killed, "checkpoints"))
	if len(cks) == 0 {
		t.Fatal("no checkpoint left")
	}
	var last int
	if _, err := fmt.Sscanf(filepath.Base(cks[len(cks)-1]), "step-%d", &last); err != nil {
		t.Fatal(err)
	}
	upTo := fmt.Sprint(last + 2)
	if msg, err := run(t, "train", "--resume", killed, "--max-steps", upTo, "--no-progress"); err != nil {
		t.Fatalf("resume on one process from step %d: %v\n%s", last, err, msg)
	}
	if msg, err := run(t, dpArgs(out, append(steady, "--run-name", "whole", "--max-steps", upTo)...)...); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, msg)
	}
	whole, resumed := lossByStep(t, filepath.Join(out, "whole")), lossByStep(t, killed)
	for step := last + 1; step <= last+2; step++ {
		a, b := whole[step], resumed[step]
		if a == 0 || math.Abs(a-b) > 1e-5*math.Abs(a) {
			t.Errorf("step %d after resuming at %d: loss %.8f, uninterrupted %.8f", step, last, b, a)
		}
	}
	relFro, elem := adapterDifference(t, adapterTensors(t, filepath.Join(out, "whole")), adapterTensors(t, killed))
	if relFro > 1e-5 || elem > 1e-5 {
		t.Errorf("adapters after resuming differ from the uninterrupted run's: relative Frobenius %.2g, element %.2g", relFro, elem)
	}
	t.Logf("resumed at step %d: losses %v, uninterrupted %v; adapter difference %.2g", last, resumed, whole, elem)
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// childWithEnv is the process whose parent is ppid and whose environment
// holds the variable (mpirun starts its local workers itself).
func childWithEnv(t *testing.T, ppid int, variable string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ')'
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != fmt.Sprint(ppid) {
			continue
		}
		env, _ := os.ReadFile(filepath.Join(d, "environ"))
		if slices.Contains(strings.Split(string(env), "\x00"), variable) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no child of mpirun (pid %d) with %s", ppid, variable)
	return 0
}

// lossByStep reads train/loss by step from a run's metrics.jsonl, the last
// line of a step winning (a resumed run logs again the steps the killed
// one logged after its last checkpoint).
func lossByStep(t *testing.T, run string) map[int]float64 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]float64{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m struct {
			Step    int                `json:"step"`
			Metrics map[string]float64 `json:"metrics"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		if v, ok := m.Metrics["train/loss"]; ok {
			out[m.Step] = v
		}
	}
	return out
}

// TestWorkersOnATerminalLogPlainLines: under --nproc-per-node on a
// terminal (script(1) gives the job one), rank 0 says its workers log plain
// lines and logs each step as a line: a progress bar, redrawn in place,
// reached the launcher's pipe as one garbled line and no step lines.
func TestWorkersOnATerminalLogPlainLines(t *testing.T) {
	exe, out := mpiJob(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) not found: Debian's bsdutils, on every Debian system")
	}
	args := []string{exe, "train", "--max-steps", "2", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "0",
		"--set", "training.eval.max_batches=1", "--set", "training.log_every=1", "--output", out, "--nproc-per-node", "2"}
	cmd := exec.Command("script", "-qec", shell.Command(args[0], args[1:]...), "/dev/null")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, got)
	}
	for _, want := range []string{"note: 2 data-parallel workers: plain log lines, no progress bar", "step     1  loss", "step     2  loss"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the workers' output on a terminal lacks %q:\n%s", want, got)
		}
	}
}
