package track_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/track/tracktest"
)

func TestListShowCompare(t *testing.T) {
	root := t.TempDir()
	a := tracktest.FakeRun(t, root, "a-lr1e-4", 1e-4, 30, 60, true)
	b := tracktest.FakeRun(t, root, "b-lr3e-4", 3e-4, 12, 60, false) // still running
	if err := os.Mkdir(filepath.Join(root, "not-a-run"), 0o755); err != nil {
		t.Fatal(err)
	}

	runs, err := track.List(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Name != "a-lr1e-4" || runs[1].Name != "b-lr3e-4" {
		t.Fatalf("List: %+v", runs)
	}
	if runs[0].Status != "finished" || runs[1].Status != "running" || runs[0].Steps != 60 || runs[1].Versions != 1 {
		t.Errorf("statuses: %+v", runs)
	}
	table := track.FormatList(runs)
	for _, want := range []string{"NAME", "a-lr1e-4", "finished", "b-lr3e-4", "running"} {
		if !strings.Contains(table, want) {
			t.Errorf("list table lacks %q:\n%s", want, table)
		}
	}

	d, err := track.Show(a)
	if err != nil {
		t.Fatal(err)
	}
	text := d.String()
	for _, want := range []string{"run      a-lr1e-4 (finished)", "steps    60", "train/loss", "val/loss", "checkpoint", "checkpoints/last"} {
		if !strings.Contains(text, want) {
			t.Errorf("show lacks %q:\n%s", want, text)
		}
	}

	c, err := track.Compare([]string{a, b})
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

	if _, err := track.Show(filepath.Join(root, "not-a-run")); err == nil {
		t.Error("Show of a non-run folder must fail")
	}
}

// TestListUnreadableRun: a corrupt summary.json lists that run as
// unreadable, naming the file, and the others as usual (List failed on
// it and listed nothing).
func TestListUnreadableRun(t *testing.T) {
	root := t.TempDir()
	tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	tracktest.FakeRun(t, root, "b", 3e-4, 12, 20, true)
	broken := filepath.Join(root, "a", track.SummaryFile)
	if err := os.WriteFile(broken, []byte("{\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs, err := track.List(root)
	if err != nil {
		t.Fatalf("List with one corrupt run: %v", err)
	}
	if len(runs) != 2 {
		t.Fatalf("List: %+v", runs)
	}
	got := map[string]track.RunSummary{}
	for _, r := range runs {
		got[r.Name] = r
	}
	if a := got["a"]; a.Status != track.StatusUnreadable || !strings.Contains(a.Reason, broken) {
		t.Errorf("corrupt run: %+v, want unreadable naming %s", a, broken)
	}
	if b := got["b"]; b.Status != track.StatusFinished || b.Steps != 20 {
		t.Errorf("intact run: %+v", b)
	}
	table := track.FormatList(runs)
	if !strings.Contains(table, "unreadable: ") {
		t.Errorf("table does not say the run is unreadable:\n%s", table)
	}
	for _, line := range strings.Split(table, "\n") {
		// Its steps and versions are unknown, not 0.
		if f := strings.Fields(line); len(f) > 0 && f[0] == "a" && f[len(f)-1] != "-" {
			t.Errorf("unreadable run's row: %q", line)
		}
	}
}

// TestListNamesRunsByFolder: a copied run folder is listed under its own
// name, not the original's from summary.json (both showed as "a").
func TestListNamesRunsByFolder(t *testing.T) {
	root := t.TempDir()
	a := tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	if err := os.CopyFS(filepath.Join(root, "a-copy"), os.DirFS(a)); err != nil {
		t.Fatal(err)
	}
	runs, err := track.List(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Name != "a" || runs[1].Name != "a-copy" || runs[1].Dir != filepath.Join(root, "a-copy") {
		t.Errorf("List: %+v", runs)
	}
}
