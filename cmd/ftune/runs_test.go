package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainReportAfterClose: the report `ftune train` writes reads the
// closed run (its name, status and metrics; before, the run's own
// summary.json schema made it say "Run " and "No metrics logged") and
// leads with the before/after table; `runs show` prints the config.
func TestTrainReportAfterClose(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	out, err := run(t, "train", "--max-steps", "1", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "1",
		"--subjects", "[chemistry]", "--set", "training.eval.generation.samples=0", "--output", outDir, "--run-name", "rep", "--no-progress")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	runDir := filepath.Join(outDir, "rep")
	if !strings.Contains(out, "report:     "+filepath.Join(runDir, "report.html")) {
		t.Errorf("train does not say where the report is:\n%s", out)
	}
	page, err := os.ReadFile(filepath.Join(runDir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h1>Run rep</h1>", "finished", "Before and after training", "<td>chemistry</td>", "val/token_accuracy"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(string(page), "No metrics logged") {
		t.Error("report says no metrics were logged")
	}
	show, err := run(t, "runs", "show", "rep", "--output", outDir)
	if err != nil || !strings.Contains(show, "configuration (config.yaml)") || !strings.Contains(show, "max_steps: 1") {
		t.Errorf("runs show: %v\n%s", err, show)
	}
}

// TestRunsShowNamesThePathGiven: a path that is not a run is reported as
// given, not looked up under --output (it said runs//nonexistent/x).
func TestRunsShowNamesThePathGiven(t *testing.T) {
	_, err := run(t, "runs", "show", "/nonexistent/x", "--output", t.TempDir())
	if err == nil || !strings.HasPrefix(err.Error(), "/nonexistent/x is not a run folder") {
		t.Fatalf("runs show /nonexistent/x: %v", err)
	}
}
