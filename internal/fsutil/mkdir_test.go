package fsutil

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMkdirAllMadeRemoveEmpty: MkdirAllMade names the folders it made,
// deepest first, and RemoveEmpty takes back only those, only while empty:
// a folder that was there before, or that something was written into,
// stays.
func TestMkdirAllMadeRemoveEmpty(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	made, err := MkdirAllMade(deep)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{deep, filepath.Join(root, "a", "b"), filepath.Join(root, "a")}
	if !slices.Equal(made, want) {
		t.Fatalf("made %v, want %v", made, want)
	}
	if again, err := MkdirAllMade(deep); err != nil || len(again) != 0 {
		t.Errorf("again: made %v, %v; want none", again, err)
	}
	RemoveEmpty(made)
	if _, err := os.Stat(filepath.Join(root, "a")); !os.IsNotExist(err) {
		t.Errorf("the folders made are still there: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("the folder that was there: %v", err)
	}

	made, err = MkdirAllMade(deep)
	if err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(root, "a", "b", "kept")
	if err := os.WriteFile(kept, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	RemoveEmpty(made)
	if _, err := os.Stat(deep); !os.IsNotExist(err) {
		t.Errorf("the empty deepest folder: %v", err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("a folder holding a file was removed: %v", err)
	}
}
