package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/dist"
	"github.com/ftune/ftune/internal/safetensors"
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
// step.
func dpArgs(out string, extra ...string) []string {
	return append([]string{"train", "--max-steps", "3", "--batch-size", "4", "--seq-len", "128", "--eval-questions", "0",
		"--set", "training.grad_accum=2", "--set", "training.log_every=1", "--output", out, "--no-progress"}, extra...)
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
// by MPICH's `mpirun.mpich -np 2` directly. Only rank 0 writes the run
// folder, and env.json names the world and the engine.
//
// grad_accum not a multiple of the workers splits each micro-batch's rows
// instead; that is not bit-exact (a weight gradient's sum over the
// micro-batch's tokens is split in two) and is checked in recipe's
// TestDataParallelAdamW.
func TestTwoWorkersMatchOneProcess(t *testing.T) {
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Skip("mpirun not found: apt-get install openmpi-bin (CI installs it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FTUNE_CACHE", t.TempDir())
	out := t.TempDir()
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
