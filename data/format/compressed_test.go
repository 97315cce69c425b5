package format

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompressedFileIsNamed: a compressed file read as jsonl (its
// extension, or data.format) is refused saying it is compressed, not as
// invalid UTF-8 at byte 2; a text file that merely starts with "BZh" is
// read.
func TestCompressedFileIsNamed(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"text": "hello"}` + "\n"))
	w.Close()
	for name, content := range map[string][]byte{
		"data.jsonl": gz.Bytes(),
		"z.jsonl":    append([]byte("\x28\xb5\x2f\xfd"), 0, 0, 0),
		"bz.txt":     []byte("BZh91AY&SY\x00\x01"),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(p, Options{})
		want := map[string]string{"data.jsonl": "gzip-compressed", "z.jsonl": "zstd-compressed", "bz.txt": "bzip2-compressed"}[name]
		if err == nil || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrUnsupported saying %q", name, err, want)
		}
	}
	p := filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(p, []byte("BZh is how a bzip2 file starts.\n\nAnother paragraph.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, Options{})
	if err != nil {
		t.Fatalf("a text starting with BZh: %v", err)
	}
	r.Close()
}
