//go:build unix

package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/testutil"
	"github.com/ftune/ftune/nn"
)

// inTime runs f and fails the test when it has not returned after d, so
// that an export blocked on a named pipe, or copying /dev/zero, fails
// instead of hanging the test binary (the goroutine is left behind; the
// binary's exit ends it).
func inTime(t *testing.T, d time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("the export is still running after %v", d)
		return nil
	}
}

// copyModel copies the model folder src (config.json, model.safetensors)
// into a new folder: each case gets a base folder to spoil.
func copyModel(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// noExport fails when out exists or a temporary folder of it is left
// beside it.
func noExport(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after a refused export (%v)", out, err)
	}
	ents, err := os.ReadDir(filepath.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s left beside the output", e.Name())
	}
}

// sparse makes a file of size bytes that takes no disk space.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestMergedHFRefusesBaseFiles: a named pipe, a device, a link out of the
// base folder, a link to nothing or a file over MaxCopiedFileBytes among
// the files copied from the base folder ends the export at once, naming
// the file, before anything is written: no output, no temporary folder.
func TestMergedHFRefusesBaseFiles(t *testing.T) {
	model := writeRandomModel(t)
	m := load(t, model, nn.LoadOptions{})
	elsewhere := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(elsewhere, []byte("secret=hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhereJSON := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(elsewhereJSON, []byte(`{"hidden_size": 64}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		file  string                  // spoiled in the base folder
		spoil func(path string) error // makes it
		is    error
		says  string // after the file's path
	}{
		{"fifo", "special_tokens_map.json", func(p string) error { return syscall.Mkfifo(p, 0o644) }, fsutil.ErrNotRegular, " is a named pipe"},
		{"dev-zero", "tokenizer.model", func(p string) error { return os.Symlink("/dev/zero", p) }, fsutil.ErrNotRegular, " (a link to /dev/zero) is a device"},
		{"link-out", "added_tokens.json", func(p string) error { return os.Symlink(elsewhere, p) }, ErrOutsideBase, " is a link to " + elsewhere},
		{"relative-link-out", "vocab.json", func(p string) error { return os.Symlink("../../../../../../../../.."+elsewhere, p) }, ErrOutsideBase, " is a link to " + elsewhere},
		{"config-link-out", "config.json", func(p string) error {
			os.Remove(p)
			return os.Symlink(elsewhereJSON, p)
		}, ErrOutsideBase, " is a link to " + elsewhereJSON},
		{"dangling", "merges.txt", func(p string) error { return os.Symlink("missing-blob", p) }, nil, " is a link to missing-blob, which does not exist"},
		{"too-large", "tokenizer.model", func(p string) error { sparse(t, p, MaxCopiedFileBytes+1<<20); return nil }, fsutil.ErrTooLarge, " is 257.0 MiB; ftune reads at most 256.0 MiB"},
		{"directory", "chat_template.json", func(p string) error { return os.Mkdir(p, 0o755) }, fsutil.ErrNotRegular, " is a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := copyModel(t, model)
			path := filepath.Join(base, c.file)
			if err := c.spoil(path); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "merged")
			err := inTime(t, 5*time.Second, func() error {
				_, err := MergedHFWith(context.Background(), m, nil, base, out, MergedOptions{})
				return err
			})
			if err == nil || c.is != nil && !errors.Is(err, c.is) || !strings.Contains(err.Error(), path+c.says) {
				t.Errorf("error %v; want one saying %q", err, path+c.says)
			}
			noExport(t, out)
		})
	}
}

// TestMergedHFFollowsCacheLinks: a Hugging Face cache snapshot holds its
// files as relative links into the repository's blobs, and the folder may
// be reached through a link of its own; its files are copied as the
// regular files the links lead to, and so is a link to a file inside the
// base folder.
func TestMergedHFFollowsCacheLinks(t *testing.T) {
	model := writeRandomModel(t)
	repo := filepath.Join(t.TempDir(), "models--org--tiny")
	snap := filepath.Join(repo, "snapshots", "0123abcd")
	for _, d := range []string{filepath.Join(repo, "blobs"), filepath.Join(snap, "extra")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string][]byte{"tokenizer.model": []byte("\x0a\x05<unk>sentencepiece"), "vocab.json": []byte(`{"a": 0}`)}
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(model, f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = b
	}
	for name, b := range files {
		blob := "blob-" + strings.ReplaceAll(name, ".", "-")
		if err := os.WriteFile(filepath.Join(repo, "blobs", blob), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "blobs", blob), filepath.Join(snap, name)); err != nil {
			t.Fatal(err)
		}
	}
	// A link within the folder.
	files["added_tokens.json"] = []byte(`{"<tool>": 512}`)
	if err := os.WriteFile(filepath.Join(snap, "extra", "added.json"), files["added_tokens.json"], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("extra", "added.json"), filepath.Join(snap, "added_tokens.json")); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "tiny")
	if err := os.Symlink(snap, base); err != nil {
		t.Fatal(err)
	}

	m := load(t, base, nn.LoadOptions{})
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := MergedHFWith(context.Background(), m, nil, base, out, MergedOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizer.model", "vocab.json", "added_tokens.json"} {
		p := filepath.Join(out, name)
		if st, err := os.Lstat(p); err != nil || !st.Mode().IsRegular() {
			t.Fatalf("%s: %v, %v; want a regular file", name, st, err)
		}
		if b, _ := os.ReadFile(p); string(b) != string(files[name]) {
			t.Errorf("%s = %q, want %q", name, b, files[name])
		}
	}
}

// TestMergedHFCancelWhileCopying: a context cancelled while a base file is
// being copied (here after two of its eight 1 MiB chunks) stops the copy
// there, not after it; the export says so and leaves no temporary folder.
func TestMergedHFCancelWhileCopying(t *testing.T) {
	base := copyModel(t, writeRandomModel(t))
	m := load(t, base, nn.LoadOptions{})
	tok := filepath.Join(base, "tokenizer.model")
	sparse(t, tok, 8*copyChunk)
	ctx := testutil.NewCancelAfter(2) // the base folder has no other file to copy
	out := filepath.Join(t.TempDir(), "merged")
	err := inTime(t, 10*time.Second, func() error {
		_, err := MergedHFWith(ctx, m, nil, base, out, MergedOptions{})
		return err
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stopped while copying "+tok) {
		t.Fatalf("error %v; want context.Canceled while copying %s", err, tok)
	}
	noExport(t, out)
}

// TestMergedHFRoomCountsCopies: the free-space check before writing counts
// the files copied from the base folder, not only the weights.
func TestMergedHFRoomCountsCopies(t *testing.T) {
	base := copyModel(t, writeRandomModel(t))
	m := load(t, base, nn.LoadOptions{})
	const tokBytes = 200 << 20
	sparse(t, filepath.Join(base, "tokenizer.model"), tokBytes)
	var weights int64
	for _, p := range m.Params() {
		weights += int64(p.Value.Numel()) * 4 // float32 base
	}
	var asked int64
	defer func(f func(string, int64) error) { checkRoom = f }(checkRoom)
	checkRoom = func(_ string, need int64) error {
		asked = need
		return syscall.ENOSPC
	}
	out := filepath.Join(t.TempDir(), "merged")
	_, err := MergedHFWith(context.Background(), m, nil, base, out, MergedOptions{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v; want the free-space refusal", err)
	}
	if asked < weights+tokBytes {
		t.Fatalf("the free-space check asked for %d bytes; the weights are %d and tokenizer.model %d", asked, weights, tokBytes)
	}
	noExport(t, out)
}
