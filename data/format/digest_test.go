package format

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDigestIsOfTheBytesRead: Options.Digest hears every byte the reader
// read from the file, the bytes its examples came from: a record appended
// while the file is read (before the end) is in both, one appended after
// the end in neither.
func TestDigestIsOfTheBytesRead(t *testing.T) {
	rec := func(a string) string {
		return `{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"` + a + `"}]}` + "\n"
	}
	path := filepath.Join(t.TempDir(), "d.jsonl")
	// Past the readers' 64 KiB buffer, so that the first Next leaves
	// some of the file unread.
	content := strings.Repeat(rec("first"), 2000)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	appendRec := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	var digest bytes.Buffer
	r, err := Open(path, Options{Digest: &digest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	appendRec(rec("during")) // before the reader reaches the end
	n := 1
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	r.Close()
	appendRec(rec("after"))
	want := content + rec("during")
	if n != 2001 || digest.String() != want {
		t.Errorf("%d examples, a digest of %d bytes (sha256 %x), want 2001 and the %d bytes read (%x)", n, digest.Len(), sha256.Sum256(digest.Bytes()), len(want), sha256.Sum256([]byte(want)))
	}
}

// TestDigestRefusedForFileKinds: a kind read where its reader needs
// (parquet's) cannot be hashed as it is read, and is refused rather than
// hashed some other way.
func TestDigestRefusedForFileKinds(t *testing.T) {
	const kind Kind = "test-random-access"
	RegisterFileKind(kind, func(f *os.File, name string) (FileSource, error) {
		t.Error("opened")
		return nil, errors.New("not for reading")
	})
	path := filepath.Join(t.TempDir(), "d.bin")
	os.WriteFile(path, []byte("x"), 0o644)
	if _, err := Open(path, Options{Kind: kind, Digest: io.Discard}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "Options.Digest") {
		t.Errorf("a digest of a file kind: %v", err)
	}
}
