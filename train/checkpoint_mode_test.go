//go:build unix

package train_test

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/ftune/ftune/train"
)

// TestCheckpointFolderMode: checkpoint folders were private (0700, from
// os.MkdirTemp) unlike every other folder ftune writes; they are 0755
// less the umask.
func TestCheckpointFolderMode(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	run, _ := newRun(t, 1)
	if err := run.Fit(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir, err := train.SaveCheckpoint(t.TempDir(), run, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o750 {
		t.Errorf("checkpoint folder mode %o under umask 027, want 750", got)
	}
}
