package testutil

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Inflate returns a folder holding dir's files with each name.gz
// decompressed to name, for the loaders that read plain files: the large
// test vocabularies are committed gzipped to keep the tree small (the GPU
// machine receives the whole working tree, within a size limit). A folder
// without .gz files is returned as it is; otherwise the copy lives in a
// t.TempDir, so read what is needed before the test ends.
func Inflate(t testing.TB, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	zipped := false
	for _, e := range entries {
		zipped = zipped || strings.HasSuffix(e.Name(), ".gz")
	}
	if !zipped {
		return dir
	}
	out := t.TempDir()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := inflateFile(filepath.Join(dir, e.Name()), out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// inflateFile copies src into the folder out, decompressing a .gz file.
func inflateFile(src, out string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	name := filepath.Base(src)
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return &os.PathError{Op: "gunzip", Path: src, Err: err}
		}
		defer zr.Close()
		r, name = zr, strings.TrimSuffix(name, ".gz")
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
