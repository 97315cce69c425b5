//go:build unix

package track

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// within runs f and fails the test when it has not returned in a few
// seconds: a read of a named pipe nobody writes never returns.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: still reading after 5s (a named pipe is waited on)", what)
	}
}

// TestRunsReadNoPipes: a run folder is untrusted (copied, downloaded);
// a named pipe in place of any file that runs list, show and compare
// read is refused naming it, not waited on forever (the process then
// ignored even SIGTERM, which stops a command cleanly only between
// reads), and a config.yaml past the size of a run file is refused, not
// read whole into memory and printed.
func TestRunsReadNoPipes(t *testing.T) {
	for _, name := range []string{SummaryFile, MetricsFile, SamplesFile, ConfigFile, LockFile} {
		dir := filepath.Join(t.TempDir(), "r1")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, MetricsFile), []byte(`{"step":1,"wall_time":1,"metrics":{"train/loss":1}}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, name))
		if err := syscall.Mkfifo(filepath.Join(dir, name), 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		var listed []RunSummary
		within(t, name+": List", func() { listed, _ = List(filepath.Dir(dir)) })
		var showErr error
		within(t, name+": Show", func() { _, showErr = Show(dir) })
		var cmpErr error
		within(t, name+": Compare", func() { _, cmpErr = Compare([]string{dir, dir}) })
		if name == LockFile {
			continue // an unreadable lock says nothing about the run
		}
		if len(listed) != 1 || listed[0].Status != StatusUnreadable && name != SamplesFile && name != ConfigFile || showErr == nil || !strings.Contains(showErr.Error(), name) {
			t.Errorf("%s a named pipe: listed %+v, show: %v; want the run unreadable and show refusing, naming the file", name, listed, showErr)
		}
		if name == ConfigFile && (cmpErr == nil || !errors.Is(cmpErr, fsutil.ErrNotRegular)) {
			t.Errorf("config.yaml a named pipe: compare: %v", cmpErr)
		}
	}
	dir := filepath.Join(t.TempDir(), "r1")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, MetricsFile), []byte(`{"step":1,"wall_time":1,"metrics":{"train/loss":1}}`+"\n"), 0o644)
	f, _ := os.Create(filepath.Join(dir, ConfigFile))
	f.Truncate(1 << 30) // sparse: 1 GiB of nothing
	f.Close()
	if _, err := Show(dir); !errors.Is(err, fsutil.ErrTooLarge) {
		t.Errorf("a 1 GiB config.yaml: show: %v, want it refused as too large", err)
	}
}
