package track

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestInputsRecordWhatWasRead: a data file written to between the run
// reading it and hashing it is recorded as read (its size and sha256 as
// the run gave them), not at its later size, and named as changed; a
// file as read is recorded as hashed, and a resume's check (CheckInputsRead)
// compares the data as read with the manifest's.
func TestInputsRecordWhatWasRead(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	a, b := filepath.Join(data, "a.jsonl"), filepath.Join(data, "b.jsonl")
	mkFile(t, a, "1\n")
	mkFile(t, b, "2\n")
	asRead := func(path, content string) FileHash {
		h := sha256.Sum256([]byte(content))
		return FileHash{Path: path, Size: int64(len(content)), SHA256: hex.EncodeToString(h[:])}
	}
	r, err := NewRun(root, "in", nil, WithTensorBoard(false))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// a was read as "1\n" and appended to since; b is as read.
	f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("3\n")
	f.Close()
	read := []FileHash{asRead(a, "1\n"), asRead(b, "2\n")}
	changed, err := r.SetInputsRead(nil, []string{data}, read)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || !strings.HasPrefix(changed[0], a+": 2 bytes read, 4 bytes now") {
		t.Errorf("changed %q, want a named", changed)
	}
	m, err := ReadManifest(filepath.Join(r.Dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Data, read) {
		t.Errorf("manifest data %+v, want what was read %+v", m.Data, read)
	}
	// A resume that read the longer file: a changed since the start, and
	// nothing changed since it was read.
	ch, err := r.CheckInputsRead(nil, []string{data}, []FileHash{asRead(a, "1\n3\n"), asRead(b, "2\n")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.Data, []string{"changed a.jsonl"}) || len(ch.SinceRead) != 0 {
		t.Errorf("resume: changes %q, since read %q", ch.Data, ch.SinceRead)
	}
}
