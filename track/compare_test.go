package track

import (
	"slices"
	"strings"
	"testing"
)

// TestCompareRunsShowsProgress: the comparison says each run's status,
// with the reason, and its steps (a run that failed at step 15 was
// compared as if it had finished, on its final metrics alone), in one
// table with the settings and metrics.
func TestCompareRunsShowsProgress(t *testing.T) {
	root := t.TempDir()
	logged := func(name string, steps int, end func(*Run) error) string {
		r, err := NewRun(root, name, []byte("training:\n  max_steps: 300\n  name: "+name+"\n"), WithTensorBoard(false))
		if err != nil {
			t.Fatal(err)
		}
		for s := 1; s <= steps; s++ {
			if err := r.Log(s, map[string]float64{"train/loss": 3 - float64(s)/100}); err != nil {
				t.Fatal(err)
			}
		}
		if err := end(r); err != nil {
			t.Fatal(err)
		}
		return r.Dir
	}
	done := logged("done", 300, (*Run).Close)
	failed := logged("failed", 15, func(r *Run) error { return r.End(StatusFailed, "loss diverged at step 15") })

	c, err := CompareRuns([]string{done, failed})
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Key: "status", Values: []string{"finished", "failed: loss diverged at step 15"}},
		{Key: "steps", Values: []string{"300", "15"}},
	}
	if len(c.Progress) != len(want) {
		t.Fatalf("progress rows %+v, want %+v", c.Progress, want)
	}
	for i, r := range want {
		if c.Progress[i].Key != r.Key || !slices.Equal(c.Progress[i].Values, r.Values) {
			t.Errorf("row %d: %+v, want %+v", i, c.Progress[i], r)
		}
	}
	s := c.String()
	lines := strings.Split(s, "\n")
	if len(lines) < 4 || !strings.HasPrefix(lines[1], "run") ||
		!strings.Contains(lines[2], "status") || !strings.Contains(lines[2], "failed: loss diverged at step 15") ||
		!strings.Contains(lines[3], "steps") || !strings.Contains(lines[3], "15") {
		t.Errorf("the table does not lead with status and steps:\n%s", s)
	}
	for _, want := range []string{"settings that differ", "training.name", "final metrics", "train/loss"} {
		if !strings.Contains(s, want) {
			t.Errorf("the table lacks %q:\n%s", want, s)
		}
	}
	// One table: the runs' columns start at the same place in every row.
	col := strings.Index(lines[0], "done")
	for _, l := range lines[2:4] {
		if i := strings.Index(l, "finished"); i >= 0 && i != col {
			t.Errorf("column of %q at %d, header's at %d:\n%s", l, i, col, s)
		}
		if i := strings.Index(l, "300"); i >= 0 && i != col {
			t.Errorf("column of %q at %d, header's at %d:\n%s", l, i, col, s)
		}
	}
}
