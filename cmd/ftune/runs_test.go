package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/track/tracktest"
)

// TestTrainReportAfterClose: the report `ftune train` writes reads the
// closed run (its name, status and metrics; before, the run's own
// summary.json schema made it say "Run " and "No metrics logged") and
// leads with the before/after table; `runs show` prints the config.
func TestTrainReportAfterClose(t *testing.T) {
	t.Setenv("FTUNE_CACHE", t.TempDir())
	outDir := t.TempDir()
	out, err := run(t, "train", "--max-steps", "1", "--batch-size", "2", "--seq-len", "64", "--eval-questions", "1",
		"--subjects", "[chemistry]", "--set", "training.eval.generation.samples=0", "--set", "training.eval.max_batches=2", "--output", outDir, "--run-name", "rep", "--no-progress")
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

// TestRunsComparePlotNamesAndKeepsFiles: --plot x.png says it wrote x.png
// (it said "x.png.png, x.png.svg"), and a file of the user's at the
// plot's name is refused, kept as it was (it was overwritten, exit 0),
// unless --force, which moves it aside.
func TestRunsComparePlotNamesAndKeepsFiles(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	tracktest.FakeRun(t, root, "b", 3e-4, 12, 20, true)
	curves := filepath.Join(work, "curves.png")
	out, err := run(t, "runs", "compare", "a", "b", "--output", root, "--plot", curves)
	if err != nil || !strings.Contains(out, "loss curves: "+curves+"\n") {
		t.Fatalf("compare --plot %s: %v\n%s", curves, err, out)
	}
	if _, err := os.Stat(curves + ".svg"); err == nil {
		t.Errorf("--plot %s wrote %s.svg", curves, curves)
	}

	loss := filepath.Join(work, "loss")
	if err := os.WriteFile(loss+".svg", []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "runs", "compare", "a", "b", "--output", root, "--plot", loss)
	if err == nil || !strings.Contains(err.Error(), loss+".svg") || !strings.Contains(err.Error(), "--force") || strings.Contains(out, "loss curves") {
		t.Fatalf("compare --plot over a user file: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(loss + ".svg"); string(b) != "mine" {
		t.Errorf("the user's file was overwritten: %q", b)
	}
	out, err = run(t, "runs", "compare", "a", "b", "--output", root, "--plot", loss, "--force")
	if err != nil || !strings.Contains(out, "loss curves: "+loss+".png, "+loss+".svg") || !strings.Contains(out, "is kept at "+loss+".svg.replaced-") {
		t.Fatalf("compare --plot --force: %v\n%s", err, out)
	}
}

// TestRunsListUnreadableRun: one corrupt summary.json is a warning naming
// the file, and the other runs are listed, exit 0 (it failed the whole
// list); when no run can be read, it is an error.
func TestRunsListUnreadableRun(t *testing.T) {
	root := t.TempDir()
	tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	tracktest.FakeRun(t, root, "b", 3e-4, 12, 20, true)
	broken := filepath.Join(root, "a", "summary.json")
	if err := os.WriteFile(broken, []byte("{\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "runs", "list", "--output", root)
	if err != nil || !strings.Contains(out, "warning: run "+filepath.Join(root, "a")+" is unreadable: "+broken+": unexpected end of JSON input") {
		t.Fatalf("runs list: %v\n%s", err, out)
	}
	if !strings.Contains(out, "b ") || !strings.Contains(out, "finished") {
		t.Errorf("the readable run is not listed:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(root, "b", "summary.json"), []byte("["), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "runs", "list", "--output", root); err == nil || !strings.Contains(err.Error(), "no run under") {
		t.Errorf("runs list with every run unreadable: %v\n%s", err, out)
	}
}

// TestRunsShowPrefersOutput: a bare run name is the folder under
// --output, even when the working directory holds a folder of that name
// (it opened ./a); a folder only in the working directory still works.
func TestRunsShowPrefersOutput(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	tracktest.FakeRun(t, work, "a", 3e-4, 12, 10, true)
	tracktest.FakeRun(t, work, "only-here", 3e-4, 12, 10, true)
	t.Chdir(work)
	out, err := run(t, "runs", "show", "a", "--output", root)
	if err != nil || !strings.Contains(out, "folder   "+filepath.Join(root, "a")+"\n") || !strings.Contains(out, "steps    20") {
		t.Errorf("runs show a: %v\n%s", err, out)
	}
	out, err = run(t, "runs", "show", "only-here", "--output", root)
	if err != nil || !strings.Contains(out, "folder   only-here\n") {
		t.Errorf("runs show only-here: %v\n%s", err, out)
	}
}

// TestRunsComparePlotFormat: --plot with an extension other than .png or
// .svg is bad usage naming the flag, before anything is printed or
// written (x.jpg wrote x.jpg.png and x.jpg.svg, exit 0).
func TestRunsComparePlotFormat(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	out, err := run(t, "runs", "compare", "a", "--output", root, "--plot", filepath.Join(work, "x.jpg"))
	var ue usageError // exit status 2
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--plot "+filepath.Join(work, "x.jpg")) || !strings.Contains(err.Error(), ".png or .svg") || out != "" {
		t.Fatalf("compare --plot x.jpg: %v (a usage error: %t)\n%s", err, errors.As(err, &ue), out)
	}
	if names, _ := os.ReadDir(work); len(names) != 0 {
		t.Errorf("compare --plot x.jpg wrote %v", names)
	}
	if _, err := run(t, "runs", "compare", "a", "--output", root, "--force"); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--force is for --plot") {
		t.Errorf("compare --force without --plot: %v", err)
	}
}

// TestRunsCompareStatusAndMissingLoss: the comparison shows each run's
// status with its reason and its steps (a failed run read as finished),
// and --plot warns, naming it, about a run with no loss to draw (it was
// left out of the plot silently); with no run to draw it fails.
func TestRunsCompareStatusAndMissingLoss(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	r, err := track.NewRun(root, "broke", []byte("training:\n  max_steps: 300\n"), track.WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.End(track.StatusFailed, "out of memory"); err != nil {
		t.Fatal(err)
	}
	plot := filepath.Join(work, "loss.svg")
	out, err := run(t, "runs", "compare", "a", "broke", "--output", root, "--plot", plot)
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, out)
	}
	for _, re := range []string{`(?m)^run\s*$`, `(?m)^  status\s+finished\s+failed: out of memory$`, `(?m)^  steps\s+20\s+0$`,
		"warning: run " + regexp.QuoteMeta(filepath.Join(root, "broke")) + " logged no train/loss or val/loss: it is not in the plot\n",
		"loss curves: " + regexp.QuoteMeta(plot) + "\n"} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("compare output lacks %s:\n%s", re, out)
		}
	}
	out, err = run(t, "runs", "compare", "broke", "--output", root, "--plot", filepath.Join(work, "none"))
	if err == nil || !strings.Contains(err.Error(), "no run logged a finite train/loss or val/loss") {
		t.Errorf("compare --plot with no loss: %v\n%s", err, out)
	}
}

// TestRunsReportKeepsUserReport: `runs report` refuses a report.html ftune
// did not write (it replaced it), naming it and --force; --force moves it
// aside and says where; ftune's own report is replaced.
func TestRunsReportKeepsUserReport(t *testing.T) {
	root := t.TempDir()
	dir := tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, []byte("my page"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "runs", "report", "a", "--output", root)
	if err == nil || !strings.Contains(err.Error(), page) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("runs report over a user's report.html: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(page); string(b) != "my page" {
		t.Fatalf("the user's report.html was replaced: %q", b)
	}
	out, err = run(t, "runs", "report", "a", "--output", root, "--force")
	if err != nil || !strings.Contains(out, "note: the file that was at "+page+" (not written by ftune) is kept at "+page+".replaced-") || !strings.HasSuffix(out, page+"\n") {
		t.Fatalf("runs report --force: %v\n%s", err, out)
	}
	if out, err := run(t, "runs", "report", "a", "--output", root); err != nil || strings.Contains(out, "note:") {
		t.Errorf("runs report over its own report: %v\n%s", err, out)
	}
}

// TestWriteReportAfterTraining: the report training writes at a run's end
// replaces the run's own report (a resumed run writes it again) and keeps
// a report.html of the user's, with a warning saying how to write it.
func TestWriteReportAfterTraining(t *testing.T) {
	dir := tracktest.FakeRun(t, t.TempDir(), "a", 1e-4, 30, 20, true)
	page := filepath.Join(dir, "report.html")
	for range 2 {
		var w bytes.Buffer
		writeReport(&w, dir)
		if w.String() != "report:     "+page+"\n" {
			t.Fatalf("writeReport: %q", w.String())
		}
	}
	if err := os.WriteFile(page, []byte("my page"), 0o644); err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	writeReport(&w, dir)
	if !strings.HasPrefix(w.String(), "warning: report not written: ") || !strings.Contains(w.String(), "ftune runs report "+dir+" --force") {
		t.Errorf("writeReport over a user's report.html: %q", w.String())
	}
	if b, _ := os.ReadFile(page); string(b) != "my page" {
		t.Errorf("the user's report.html was replaced: %q", b)
	}
}
