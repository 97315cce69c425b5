//go:build unix

package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// within runs f and fails the test when it has not returned after d: a
// reader that blocks forever (the bug these tests guard against) then
// fails instead of hanging the test binary. The blocked goroutine is left
// behind; the binary's exit ends it.
func within[T any](t *testing.T, d time.Duration, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("still blocked after %v", d)
		panic("unreachable")
	}
}

// TestReadFileLimitRefusesNonRegular: a named pipe nobody writes, a link
// to /dev/zero, a directory and a link to a pipe are refused at once, with
// an error naming the path and what it is, before any byte is read.
func TestReadFileLimitRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "tokenizer_config.json")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	zero := filepath.Join(dir, "tokenizer.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	toFifo := filepath.Join(dir, "config.json")
	if err := os.Symlink("tokenizer_config.json", toFifo); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "chat_template.jinja")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want []string
	}{
		{fifo, []string{fifo + " is a named pipe"}},
		{zero, []string{zero + " (a link to /dev/zero) is a device"}},
		{toFifo, []string{toFifo + " (a link to " + fifo + ") is a named pipe"}},
		{sub, []string{sub + " is a directory"}},
	} {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			start := time.Now()
			// The limit is large so that reading /dev/zero up to it (what
			// ReadFileLimit did) would show as a TooLargeError, not this.
			err := within(t, 5*time.Second, func() error { _, err := ReadFileLimit(c.path, 64<<20); return err })
			var nr *NotRegularError
			if !errors.As(err, &nr) || !errors.Is(err, ErrNotRegular) {
				t.Fatalf("err = %v (after %v), want a NotRegularError", err, time.Since(start))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestReadFileLimitFollowsLinks: the Hugging Face cache keeps a snapshot's
// files as relative links into the repository's blobs; a link to a regular
// file reads as that file.
func TestReadFileLimitFollowsLinks(t *testing.T) {
	repo := t.TempDir()
	blob := filepath.Join(repo, "blobs", "6f1c0d")
	snap := filepath.Join(repo, "snapshots", "abc123")
	for _, d := range []string{filepath.Dir(blob), snap} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(blob, []byte(`{"model_type":"llama"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(snap, "config.json")
	if err := os.Symlink("../../blobs/6f1c0d", link); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFileLimit(link, 1<<20)
	if err != nil || string(b) != `{"model_type":"llama"}` {
		t.Fatalf("%q, %v; want the blob's content", b, err)
	}
}

// TestOpenRegularBlocking: the regular file OpenRegular returns is back in
// blocking mode (it was opened with O_NONBLOCK so that a pipe could not
// stall the open).
func TestOpenRegularBlocking(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, info, err := OpenRegular(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info.Size() != 1 {
		t.Fatalf("size %d, want 1", info.Size())
	}
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	if flags&unix.O_NONBLOCK != 0 {
		t.Fatal("the file is still O_NONBLOCK")
	}
}
