//go:build unix

package format

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// TestNamedPipeRefused: a data file that is a named pipe nobody writes
// (left in a dataset folder, or named as a shard) is refused at once; the
// open waited on it forever, past Ctrl-C and SIGTERM. KindOf's look at a
// .json file's content does not wait on one either.
func TestNamedPipeRefused(t *testing.T) {
	for _, name := range []string{"train.jsonl", "data.json", "train-00000-of-00001.csv"} {
		pipe := filepath.Join(t.TempDir(), name)
		if err := syscall.Mkfifo(pipe, 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			KindOf(pipe)
			_, err := Open(pipe, Options{})
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, fsutil.ErrNotRegular) {
				t.Fatalf("%s: %v, want it refused as not a regular file", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: waits on a named pipe", name)
		}
	}
}
