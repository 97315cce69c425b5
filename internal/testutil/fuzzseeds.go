package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// AddFileSeeds adds every file matching the glob patterns to f's corpus,
// and fails when fewer than want match: a moved testdata folder would
// otherwise leave the target fuzzing from nothing.
func AddFileSeeds(f *testing.F, want int, patterns ...string) {
	f.Helper()
	var paths []string
	for _, p := range patterns {
		m, err := filepath.Glob(p)
		if err != nil {
			f.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) < want {
		f.Fatalf("%d seed files match %v; want at least %d", len(paths), patterns, want)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
