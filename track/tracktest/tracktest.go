// Package tracktest makes run folders for the tests of track and of the
// packages that read run folders (track/report, the CLI's runs commands).
package tracktest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/track"
)

// T0 is the fake start time of FakeRun's clock.
var T0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// clock is a fake time source advancing one second per call.
func clock(start time.Time) func() time.Time {
	t := start
	return func() time.Time {
		t = t.Add(time.Second)
		return t
	}
}

// FakeRun writes a run whose loss decays as 3·exp(-step/tau)+0.5 with
// validation every 10 steps, a text sample and a checkpoint version; lr
// differs in the config; close says whether the run is closed (else it
// stays "running").
func FakeRun(t testing.TB, root, name string, lr float64, tau float64, steps int, close bool) string {
	t.Helper()
	cfg := fmt.Sprintf("model:\n  path: tiny-base\ntraining:\n  optimizer:\n    lr: %g\n  batch_size: 8\n  seed: 42\n", lr)
	r, err := track.NewRun(root, name, []byte(cfg), track.WithClock(clock(T0)))
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

// DamageMetrics replaces the third line of a run folder's metrics.jsonl
// with text that is not JSON (a run damaged on disk, metrics.jsonl:3) and
// returns the file's path.
func DamageMetrics(t testing.TB, run string) string {
	t.Helper()
	metrics := filepath.Join(run, "metrics.jsonl")
	data, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) < 3 {
		t.Fatalf("%s has %d lines: nothing to damage at line 3", metrics, len(lines))
	}
	lines[2] = "garbage\n"
	if err := os.WriteFile(metrics, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return metrics
}
