package fsutil

import (
	"path/filepath"
	"runtime"
	"testing"
)

// TestFreeBytes: a folder and a path not created yet under it are on the
// same file system, which has some space left.
func TestFreeBytes(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		t.Skip("statfs is not read on " + runtime.GOOS)
	}
	dir := t.TempDir()
	free, ok := FreeBytes(dir)
	if !ok || free == 0 {
		t.Fatalf("FreeBytes(%s) = %d, %v", dir, free, ok)
	}
	later, ok := FreeBytes(filepath.Join(dir, "runs", "not", "yet"))
	if !ok || later == 0 || later > 2*free || free > 2*later {
		t.Fatalf("a path not created yet: %d, %v; its parent has %d", later, ok, free)
	}
}
