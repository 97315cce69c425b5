package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSHA256File: size and hash of a file ("abc", FIPS 180-2's example),
// and a folder refused as not a regular file.
func TestSHA256File(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "abc")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, sum, err := SHA256File(p)
	if err != nil || n != 3 || sum != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("got %d %s %v", n, sum, err)
	}
	if _, _, err := SHA256File(dir); err == nil {
		t.Fatal("a folder hashed")
	}
}
