//go:build unix

package nn

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// TestLoadRefusesGenerationConfigPipe: a named pipe as generation_config.json
// is refused at once (opening it for reading would wait for a writer), as
// config.json is.
func TestLoadRefusesGenerationConfigPipe(t *testing.T) {
	dir := llamaTinyWith(t, "")
	if err := syscall.Mkfifo(filepath.Join(dir, GenerationConfigFile), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(dir, LoadOptions{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, fsutil.ErrNotRegular) {
			t.Errorf("a named pipe as %s: got %v, want ErrNotRegular", GenerationConfigFile, err)
		}
	case <-time.After(30 * time.Second): // generous: a loaded CI machine; the check itself takes microseconds
		t.Fatalf("Load blocked on a named pipe as %s", GenerationConfigFile)
	}
}
