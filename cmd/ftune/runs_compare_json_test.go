package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/track/tracktest"
)

// jsonRunsCompare is runs compare --json's document as a script reads it.
type jsonRunsCompare struct {
	Runs               []jsonRun `json:"runs"`
	SettingsThatDiffer []struct {
		Key    string    `json:"key"`
		Values []*string `json:"values"`
	} `json:"settings_that_differ"`
	PlotFiles []string `json:"plot_files"`
}

// TestRunsCompareJSON: runs compare --json prints one document on stdout:
// the runs in the order named with what their folders hold, the settings
// that differ with null where a run's config.yaml lacks the key (the
// table's "-", which a run could also have written), and with --plot the
// files written (null without); the plot's note goes to stderr.
func TestRunsCompareJSON(t *testing.T) {
	root, work := t.TempDir(), t.TempDir()
	tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	tracktest.FakeRun(t, root, "b", 3e-4, 12, 10, true)
	tracktest.FakeRun(t, root, "c", 1e-4, 30, 20, true)
	cfg := filepath.Join(root, "c", "config.yaml")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lean := strings.Replace(string(data), "  seed: 42\n", "", 1)
	if lean == string(data) {
		t.Fatalf("FakeRun's config.yaml has no seed: 42:\n%s", data)
	}
	if err := os.WriteFile(cfg, []byte(lean), 0o644); err != nil {
		t.Fatal(err)
	}

	code, text, stderr := streamsOf(t, "runs", "compare", "b", "a", "c", "--output", root)
	if code != 0 {
		t.Fatalf("runs compare: exit %d\n%s%s", code, text, stderr)
	}
	code, stdout, stderr := streamsOf(t, "runs", "compare", "b", "a", "c", "--output", root, "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("runs compare --json: exit %d, stderr %q\n%s", code, stderr, stdout)
	}
	var doc jsonRunsCompare
	decodeOne(t, stdout, &doc)
	if len(doc.Runs) != 3 || doc.Runs[0].Name != "b" || doc.Runs[1].Name != "a" || doc.Runs[2].Name != "c" {
		t.Fatalf("runs %+v, want b, a, c in that order", doc.Runs)
	}
	for _, r := range doc.Runs {
		want := readRunFolder(t, r.Folder)
		if r.Status != "finished" || r.Steps == nil || *r.Steps != want.steps || r.FinalMetrics == nil || !maps2Equal(*r.FinalMetrics, want.final) {
			t.Errorf("run %s: status %s, steps %v, final %v; metrics.jsonl: %d, %v", r.Name, r.Status, r.Steps, r.FinalMetrics, want.steps, want.final)
		}
	}
	settings := map[string][]*string{}
	for _, s := range doc.SettingsThatDiffer {
		settings[s.Key] = s.Values
		// Every key the document names is a row of the table.
		if !strings.Contains(text, "  "+s.Key+" ") {
			t.Errorf("setting %s is not in the table:\n%s", s.Key, text)
		}
	}
	str := func(v *string) string {
		if v == nil {
			return "null"
		}
		return *v
	}
	if lr := settings["training.optimizer.lr"]; len(lr) != 3 || str(lr[0]) != "0.0003" || str(lr[1]) != "0.0001" || str(lr[2]) != "0.0001" {
		t.Errorf("training.optimizer.lr: %v, want 0.0003, 0.0001, 0.0001 (settings %v)", lr, doc.SettingsThatDiffer)
	}
	if seed := settings["training.seed"]; len(seed) != 3 || str(seed[0]) != "42" || str(seed[1]) != "42" || seed[2] != nil {
		t.Errorf("training.seed: %v, want 42, 42, null", seed)
	}
	if _, ok := settings["training.batch_size"]; ok {
		t.Error("training.batch_size is the same in every run, but listed as differing")
	}
	if doc.PlotFiles != nil {
		t.Errorf("plot_files %v without --plot, want null", doc.PlotFiles)
	}

	// --plot over a file of the user's with --force: the files in the
	// document, the note about the kept file on stderr.
	loss := filepath.Join(work, "loss.svg")
	if err := os.WriteFile(loss, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = streamsOf(t, "runs", "compare", "a", "b", "--output", root, "--json", "--plot", loss, "--force")
	if code != 0 {
		t.Fatalf("runs compare --json --plot: exit %d\n%s%s", code, stdout, stderr)
	}
	var plotted jsonRunsCompare
	decodeOne(t, stdout, &plotted)
	if len(plotted.PlotFiles) != 1 || plotted.PlotFiles[0] != loss {
		t.Errorf("plot_files %v, want [%s]", plotted.PlotFiles, loss)
	}
	if !strings.Contains(stderr, "note: the file that was at "+loss) {
		t.Errorf("stderr lacks the note about the kept file: %q", stderr)
	}
	if svg, err := os.ReadFile(loss); err != nil || !strings.Contains(string(svg), "<svg") {
		t.Errorf("%s is not the plot: %v", loss, err)
	}
}
