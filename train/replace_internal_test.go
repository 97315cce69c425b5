package train

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReplaceKilledBetweenRenames: where the system cannot exchange two
// folders, a checkpoint written again at its step renames the old one
// aside before renaming the new one in. A process killed between the two
// (simulated: the hook stops the save there) leaves the old one, which
// the next resume puts back: never no checkpoint at that step.
func TestReplaceKilledBetweenRenames(t *testing.T) {
	root := t.TempDir()
	final := filepath.Join(root, StepDir(3))
	if err := os.MkdirAll(final, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(final, "old"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tmp, err := mkdirTemp(root, ".tmp-"+StepDir(3)+"-")
	if err != nil {
		t.Fatal(err)
	}
	saved := exchange
	defer func() { exchange, beforeReplace = saved, nil }()
	exchange = func(a, b string) error { return errors.New("unsupported") }
	killed := errors.New("killed")
	beforeReplace = func(string) { panic(killed) }
	func() {
		defer func() {
			if r := recover(); r != killed {
				t.Fatalf("replaceDir did not reach the hook: %v", r)
			}
		}()
		_ = replaceDir(tmp, final)
	}()
	restoreAside(root)
	if _, err := os.Stat(filepath.Join(final, "old")); err != nil {
		t.Fatalf("after a kill between the renames, the old checkpoint is not back: %v", err)
	}

	// Not killed: the new folder replaces the old, which ends at tmp.
	beforeReplace = nil
	if err := replaceDir(tmp, final); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "old")); err != nil {
		t.Errorf("the replaced folder is not at tmp: %v", err)
	}
	if _, err := os.Stat(filepath.Join(final, "old")); err == nil {
		t.Errorf("the old folder is still at final")
	}
}
