package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeDPOPairs writes n preference pairs from the bundled chemistry
// questions to dir/prefs.jsonl: the right answer chosen, the answer spelt
// backwards rejected (twice over when that is the same).
func writeDPOPairs(t *testing.T, dir string, n int) string {
	t.Helper()
	f, err := os.Open("../../assets/data/subjects/chemistry/train.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	sc := bufio.NewScanner(f)
	turn := func(role, content string) []map[string]string {
		return []map[string]string{{"role": role, "content": content}}
	}
	for i := 0; i < n && sc.Scan(); i++ {
		var rec struct {
			Messages []struct{ Role, Content string }
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		q, a := rec.Messages[0].Content, rec.Messages[1].Content
		rs := []rune(a)
		slices.Reverse(rs)
		w := string(rs)
		if w == a {
			w += a
		}
		if err := enc.Encode(map[string]any{"prompt": turn("user", q), "chosen": turn("assistant", a), "rejected": turn("assistant", w)}); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "prefs.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// stepMetrics reads a run's metrics.jsonl: per record, its step and the
// figures that name matches.
func stepMetrics(t *testing.T, run string, keep func(string) bool) []map[string]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Step    int                `json:"step"`
			Metrics map[string]float64 `json:"metrics"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		m := map[string]float64{"step": float64(line.Step)}
		for k, v := range line.Metrics {
			if keep(k) {
				m[k] = v
			}
		}
		out = append(out, m)
	}
	return out
}

// TestTwoWorkersTrainDPO: `ftune train --set training.objective=dpo
// --nproc-per-node 2` (Open MPI), with 4 micro-batches a step (two per
// worker), gives one process's run bit for bit: every logged loss, the
// step's rewards (the whole step's, summed over the workers), the
// validations (shared between the workers) and the adapter.
func TestTwoWorkersTrainDPO(t *testing.T) {
	exe, out := mpiJob(t)
	data := writeDPOPairs(t, t.TempDir(), 40)
	args := func(name string) []string {
		return []string{"train", "--data", data, "--set", "training.objective=dpo", "--max-steps", "3", "--batch-size", "2", "--seq-len", "64",
			"--set", "training.grad_accum=4", "--set", "training.log_every=1", "--set", "data.val_split=0.25",
			"--set", "training.eval.every=2", "--set", "training.eval.max_batches=0", "--eval-questions", "0",
			"--output", out, "--run-name", name, "--no-progress"}
	}
	if msg, err := run(t, args("one")...); err != nil {
		t.Fatalf("one process: %v\n%s", err, msg)
	}
	cmd := exec.Command(exe, append(args("two"), "--nproc-per-node", "2")...)
	two, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, two)
	}
	if !strings.Contains(string(two), "on 2 data-parallel workers") {
		t.Errorf("the two workers' log does not say they are:\n%s", two)
	}
	keep := func(k string) bool {
		return k == "train/loss" || strings.HasPrefix(k, "train/rewards/") || strings.HasPrefix(k, "train/logps/") || strings.HasPrefix(k, "val/") || strings.HasPrefix(k, "eval_")
	}
	one, many := stepMetrics(t, filepath.Join(out, "one"), keep), stepMetrics(t, filepath.Join(out, "two"), keep)
	if len(one) != len(many) {
		t.Fatalf("metrics.jsonl: %d records from one process, %d from two workers", len(one), len(many))
	}
	seen := map[string]int{}
	for i := range one {
		for k, v := range one[i] {
			if w, ok := many[i][k]; !ok || w != v {
				t.Errorf("record %d (step %g) %s: one process %.17g, two workers %.17g (present %v)", i, one[i]["step"], k, v, w, ok)
			}
			seen[k]++
		}
	}
	// Every step's rewards; validations at steps 2 and 3, and before and
	// after training.
	for k, n := range map[string]int{"train/rewards/margins": 3, "val/rewards/accuracies": 2, "eval_before/val/loss": 1, "eval_after/val/rewards/margins": 1} {
		if seen[k] != n {
			t.Errorf("%s logged %d times, want %d", k, seen[k], n)
		}
	}
	a, b := adapterTensors(t, filepath.Join(out, "one")), adapterTensors(t, filepath.Join(out, "two"))
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("adapters hold %d and %d tensors", len(a), len(b))
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			t.Errorf("adapter tensor %s differs between one process and two workers", k)
		}
	}
	t.Logf("one process: %v", one[len(one)-1])
}
