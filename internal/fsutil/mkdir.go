package fsutil

import (
	"os"
	"path/filepath"
)

// MkdirAllMade is os.MkdirAll (mode 0o755) returning the folders it made,
// deepest first, for RemoveEmpty to take back when the work they were made
// for fails or is interrupted: a command that says "nothing was written"
// leaves no empty folders either.
func MkdirAllMade(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	return missing, os.MkdirAll(dir, 0o755)
}

// RemoveEmpty removes the folders MkdirAllMade made, deepest first, each
// only while it is empty (os.Remove never removes a folder holding
// anything), stopping at the first that is not.
func RemoveEmpty(made []string) {
	for _, d := range made {
		if os.Remove(d) != nil {
			return
		}
	}
}
