package track

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRun writes a run whose loss decays as 3·exp(-step/tau)+0.5 with
// validation every 10 steps; lr differs in the config.
func fakeRun(t *testing.T, root, name string, lr float64, tau float64, steps int, close bool) string {
	t.Helper()
	cfg := fmt.Sprintf("model:\n  path: tiny-base\ntraining:\n  optimizer:\n    lr: %g\n  batch_size: 8\n  seed: 42\n", lr)
	r, err := NewRun(root, name, []byte(cfg), WithClock(clock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= steps; s++ {
		loss := 3*math.Exp(-float64(s)/tau) + 0.5 + 0.05*math.Sin(float64(s))
		if err := r.Log(s, map[string]float64{"train/loss": loss, "train/lr": lr * math.Min(1, float64(s)/5)}); err != nil {
			t.Fatal(err)
		}
		if s%10 == 0 {
			if err := r.Log(s, map[string]float64{"val/loss": loss + 0.1, "val/token_accuracy": 1 - loss/4}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.LogText(steps, "samples/0", "Q: <b>2+2</b>?\nA: 4 <script>alert(1)</script>"); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(r.Dir, "checkpoints", "last")
	if err := os.MkdirAll(ck, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ck, "adapter_model.safetensors"), []byte(name), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.AddVersion("checkpoint", ck, nil, nil); err != nil {
		t.Fatal(err)
	}
	if close {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return r.Dir
}

func TestListShowCompare(t *testing.T) {
	root := t.TempDir()
	a := fakeRun(t, root, "a-lr1e-4", 1e-4, 30, 60, true)
	b := fakeRun(t, root, "b-lr3e-4", 3e-4, 12, 60, false) // still running
	if err := os.Mkdir(filepath.Join(root, "not-a-run"), 0o755); err != nil {
		t.Fatal(err)
	}

	runs, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Name != "a-lr1e-4" || runs[1].Name != "b-lr3e-4" {
		t.Fatalf("List: %+v", runs)
	}
	if runs[0].Status != "finished" || runs[1].Status != "running" || runs[0].Steps != 60 || runs[1].Versions != 1 {
		t.Errorf("statuses: %+v", runs)
	}
	table := FormatList(runs)
	for _, want := range []string{"NAME", "a-lr1e-4", "finished", "b-lr3e-4", "running"} {
		if !strings.Contains(table, want) {
			t.Errorf("list table lacks %q:\n%s", want, table)
		}
	}

	d, err := Show(a)
	if err != nil {
		t.Fatal(err)
	}
	text := d.String()
	for _, want := range []string{"run      a-lr1e-4 (finished)", "steps    60", "train/loss", "val/loss", "checkpoint", "checkpoints/last"} {
		if !strings.Contains(text, want) {
			t.Errorf("show lacks %q:\n%s", want, text)
		}
	}

	c, err := Compare([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Params) != 1 || c.Params[0].Key != "training.optimizer.lr" || c.Params[0].Values[0] != "0.0001" || c.Params[0].Values[1] != "0.0003" {
		t.Errorf("differing params: %+v", c.Params)
	}
	wantMetrics := []string{"train/loss", "train/lr", "val/loss", "val/token_accuracy"}
	if len(c.Metrics) != len(wantMetrics) {
		t.Fatalf("metrics rows %+v", c.Metrics)
	}
	for i, k := range wantMetrics {
		if c.Metrics[i].Key != k {
			t.Errorf("metric row %d = %s, want %s", i, c.Metrics[i].Key, k)
		}
	}
	// b's loss decays faster: its final train loss is lower.
	if c.Metrics[0].Values[0] <= c.Metrics[0].Values[1] {
		t.Errorf("final train loss a=%s b=%s", c.Metrics[0].Values[0], c.Metrics[0].Values[1])
	}
	table = c.String()
	for _, want := range []string{"a-lr1e-4", "b-lr3e-4", "settings that differ", "training.optimizer.lr", "0.0003", "final metrics", "val/token_accuracy"} {
		if !strings.Contains(table, want) {
			t.Errorf("comparison lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "batch_size") {
		t.Errorf("identical settings listed:\n%s", table)
	}

	if _, err := Show(filepath.Join(root, "not-a-run")); err == nil {
		t.Error("Show of a non-run folder must fail")
	}
}
