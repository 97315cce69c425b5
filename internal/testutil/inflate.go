package testutil

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Inflate returns a folder holding dir's files with each name.zst
// decompressed to name, for the loaders that read plain files: the large
// test vocabularies are committed zstd-compressed (`zstd -19`, a quarter
// smaller than gzip -9 on these JSON files) to keep the tree small (the GPU
// machine receives the whole working tree, within a size limit). A folder
// without .zst files is returned as it is; otherwise the copy lives in a
// t.TempDir, so read what is needed before the test ends.
func Inflate(t testing.TB, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	compressed := false
	for _, e := range entries {
		compressed = compressed || strings.HasSuffix(e.Name(), ".zst")
	}
	if !compressed {
		return dir
	}
	out := t.TempDir()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := InflateFile(filepath.Join(dir, e.Name()), out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// InflateFile copies src into the folder out, decompressing a .zst file
// (and dropping that suffix from its name).
func InflateFile(src, out string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	name := filepath.Base(src)
	var r io.Reader = f
	if strings.HasSuffix(name, ".zst") {
		zr, err := zstd.NewReader(f)
		if err != nil {
			return &os.PathError{Op: "unzstd", Path: src, Err: err}
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".zst")
	}
	w, err := os.Create(filepath.Join(out, name))
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return &os.PathError{Op: "inflate", Path: src, Err: err}
	}
	return w.Close()
}
