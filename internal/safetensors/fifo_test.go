//go:build unix

package safetensors

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// TestOpenRefusesANamedPipe: a model.safetensors that is a named pipe
// (nobody writing it) is refused at once, not waited on forever; a
// directory keeps its own message.
func TestOpenRefusesANamedPipe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := Open(path)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, fsutil.ErrNotRegular) {
			t.Fatalf("a named pipe: %v, want a refusal saying it is not a regular file", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open on a named pipe still blocked after 5 s")
	}
	if _, err := Open(dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a directory: %v, want ErrNotFound with OpenDir's hint", err)
	}
}
