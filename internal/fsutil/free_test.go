package fsutil

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
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

// TestCheckRoom: a write that fits is let through, one larger than the
// free space is refused naming both sizes.
func TestCheckRoom(t *testing.T) {
	dir := t.TempDir()
	free, ok := FreeBytes(dir)
	if !ok {
		t.Skip("free space is not known here")
	}
	if err := CheckRoom(filepath.Join(dir, "model"), 1<<20); err != nil {
		t.Errorf("1 MiB: %v", err)
	}
	err := CheckRoom(filepath.Join(dir, "model"), int64(free)+1<<40)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "needs about ") || !strings.Contains(err.Error(), " free") {
		t.Errorf("1 TiB more than is free: %v", err)
	}
}
