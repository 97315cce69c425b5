package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftune/ftune/track/tracktest"
)

// TestRunsDamagedMetrics: a finished run whose metrics.jsonl holds a
// garbage line was listed as finished, without a word, while runs show and
// runs report failed on it. Now list marks it damaged, naming the file
// and line, and warns in the words show and report fail with; the other
// runs are listed, exit 0.
func TestRunsDamagedMetrics(t *testing.T) {
	root := t.TempDir()
	tracktest.FakeRun(t, root, "a", 1e-4, 30, 20, true)
	tracktest.FakeRun(t, root, "b", 3e-4, 12, 20, true)
	metrics := tracktest.DamageMetrics(t, filepath.Join(root, "a"))
	const where = "metrics.jsonl:3"
	said := "run " + filepath.Join(root, "a") + " is damaged: " + metrics + ":3: "

	code, out, _ := exitOf(t, "runs", "list", "--output", root)
	if code != 0 {
		t.Errorf("runs list: exit %d, want 0\n%s", code, out)
	}
	var rowA string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "a ") {
			rowA = l
		}
	}
	if !strings.Contains(rowA, "damaged") || !strings.Contains(rowA, where) || strings.Contains(rowA, "finished") {
		t.Errorf("run a's row %q does not mark it damaged at %s\n%s", rowA, where, out)
	}
	if !strings.Contains(out, "warning: "+said) {
		t.Errorf("runs list does not warn %q:\n%s", said, out)
	}
	if !strings.Contains(out, "b ") || !strings.Contains(out, "finished") {
		t.Errorf("the sound run is not listed:\n%s", out)
	}
	for _, cmd := range []string{"show", "report"} {
		code, out, errOut := exitOf(t, "runs", cmd, "a", "--output", root)
		if code != 1 || !strings.Contains(errOut, said) {
			t.Errorf("runs %s: exit %d, stderr %q, want 1 and %q\n%s", cmd, code, errOut, said, out)
		}
	}
}
