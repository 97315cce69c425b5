package tinymodels

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// ensured remembers, per family, that this process has made its folder
// complete (or failed to), so that each test process hashes or writes a
// family's weights once.
var ensured sync.Map // family name -> func() error (a sync.OnceValue)

// Dir returns the folder testdata/<family>-tiny of the module the test
// runs in, with its weights in place (written there, gitignored, the
// first time a test process asks; see Ensure). The test fails with the
// reason if they cannot be.
func Dir(t testing.TB, name string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", name+"-tiny")
	once, _ := ensured.LoadOrStore(name, sync.OnceValue(func() error {
		_, err := Ensure(dir, name)
		return err
	}))
	if err := once.(func() error)(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// moduleRoot is the nearest folder at or above the working directory (a
// test's package folder) that holds go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("tiny model folder: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("tiny model folder: no go.mod at or above %s", wd)
		}
	}
}
