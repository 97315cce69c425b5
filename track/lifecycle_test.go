package track

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEndRecordsStatusAndReason: the status a run ends with, and why, reach
// summary.json, `runs list` and `runs show`.
func TestEndRecordsStatusAndReason(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct{ status, reason, text string }{
		{StatusFinished, "stopped: max_time", "finished (stopped: max_time)"},
		{StatusInterrupted, "", "interrupted"},
		{StatusFailed, "train: loss diverged", "failed: train: loss diverged"},
	} {
		r, err := NewRun(root, "", nil, WithTensorBoard(false))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Log(1, map[string]float64{"train/loss": 1}); err != nil {
			t.Fatal(err)
		}
		if err := r.End(c.status, c.reason); err != nil {
			t.Fatal(err)
		}
		s, err := Summarize(r.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != c.status || s.Reason != c.reason || s.StatusText() != c.text || s.Final["train/loss"] != 1 {
			t.Errorf("summary %+v, want %s", s, c.text)
		}
		d, err := Show(r.Dir)
		if err != nil || !strings.Contains(d.String(), c.text) {
			t.Errorf("runs show lacks %q: %v\n%s", c.text, err, d)
		}
	}
	// A long error is cut in the list (runs show has it whole).
	r, err := NewRun(root, "", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.End(StatusFailed, strings.Repeat("very long error ", 20)); err != nil {
		t.Fatal(err)
	}
	runs, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	if l := FormatList(runs); !strings.Contains(l, "failed: train: loss diverged") || !strings.Contains(l, "interrupted") || !strings.Contains(l, "finished (stopped: max_time)") {
		t.Errorf("runs list:\n%s", l)
	}
	if l := FormatList(runs); strings.Contains(l, strings.Repeat("very long error ", 4)) || !strings.Contains(l, "failed: very long error very long error very lo…") {
		t.Errorf("a long error is not cut in the list:\n%s", l)
	}
}

// TestNewRunFailureIsRecorded: a run folder whose set-up failed says so
// rather than staying "running" (or unlisted) forever.
func TestNewRunFailureIsRecorded(t *testing.T) {
	root := t.TempDir()
	if _, err := NewRun(root, "bad", []byte("training: [unclosed"), WithTensorBoard(false)); err == nil {
		t.Fatal("a config that is not YAML was accepted")
	}
	s, err := Summarize(filepath.Join(root, "bad"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusFailed || !strings.Contains(s.Reason, ConfigFile) {
		t.Errorf("status %q reason %q, want failed naming %s", s.Status, s.Reason, ConfigFile)
	}
}

// TestSummarizeDied: a run never closed whose process is gone from this
// host is "died"; one whose process lives is "running".
func TestSummarizeDied(t *testing.T) {
	root := t.TempDir()
	r, err := NewRun(root, "live", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, ok := readHolder(r.Dir)
	if !ok || h.PID != os.Getpid() {
		t.Fatalf("%s holds %+v, want this process", LockFile, h)
	}
	if s, _ := Summarize(r.Dir); s.Status != StatusRunning {
		t.Errorf("open run is %q, want running", s.Status)
	}
	// A copy of the folder held by a process that has exited.
	dead := filepath.Join(root, "dead")
	if err := os.Mkdir(dead, 0o755); err != nil {
		t.Fatal(err)
	}
	mkFile(t, filepath.Join(dead, MetricsFile), `{"step":3,"wall_time":1,"metrics":{"train/loss":2}}`+"\n")
	cmd := exec.Command(os.Args[0], "-test.run=^$") // this test binary, running no test
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	h.PID = cmd.Process.Pid
	writeHolderFile(t, dead, h)
	s, err := Summarize(dead)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusDied || s.Steps != 3 {
		t.Errorf("killed run: %+v, want died at step 3", s)
	}
	// Another host cannot be checked: still "running".
	h.Host = "elsewhere.invalid"
	writeHolderFile(t, dead, h)
	if s, _ := Summarize(dead); s.Status != StatusRunning {
		t.Errorf("run held on another host is %q, want running", s.Status)
	}
}

func writeHolderFile(t *testing.T, dir string, h Holder) {
	t.Helper()
	r := &Run{Dir: dir}
	if err := r.writeJSON(LockFile, h); err != nil {
		t.Fatal(err)
	}
}
