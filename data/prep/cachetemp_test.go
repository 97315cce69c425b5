package prep

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestOpenOrBuildRemovesKilledCacheTemps: the temporary files that cache
// writes killed before their rename left beside the cache
// (".train.tokens.tmp-<digits>" starting as a cache does) are removed by
// the next build of that cache, which says so on its log; every other file
// is left as it was: a foreign file of that name, one a live process holds
// open (a write under way), one that is not a regular file, and other
// names. Each case has a real leftover beside it, so that a build removing
// nothing fails too.
func TestOpenOrBuildRemovesKilledCacheTemps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("whether a process holds a file open is read from /proc")
	}
	// What a write killed before its rename leaves: a cache's beginning.
	whole := filepath.Join(t.TempDir(), "whole.tokens")
	if err := WriteCache(whole, testKey(), randomDocs(40, 30, 3)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	partial := string(b[:len(b)/2])
	const control = ".train.tokens.tmp-1626802976"

	for _, tc := range []struct {
		name, file, body string
		open             bool // held open by this process while the build runs
		dir, link        bool // a folder (body is a file in it); a symbolic link to a leftover-like file
		removed          bool
	}{
		{name: "partial cache", file: ".train.tokens.tmp-42", body: partial, removed: true},
		{name: "empty", file: ".train.tokens.tmp-43", body: "", removed: true},
		{name: "header cut in the magic", file: ".train.tokens.tmp-44", body: cacheMagic[:5], removed: true},
		{name: "foreign content", file: ".train.tokens.tmp-45", body: "the user's notes"},
		{name: "magic later in the file", file: ".train.tokens.tmp-46", body: "x" + cacheMagic},
		{name: "held open", file: ".train.tokens.tmp-47", body: partial, open: true},
		{name: "not digits", file: ".train.tokens.tmp-draft", body: partial},
		{name: "another cache's", file: ".val.tokens.tmp-48", body: partial},
		{name: "no dot", file: "train.tokens.tmp-49", body: partial},
		{name: "folder", file: ".train.tokens.tmp-50", body: partial, dir: true},
		{name: "symbolic link", file: ".train.tokens.tmp-51", body: partial, link: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "train.tokens")
			if err := os.WriteFile(filepath.Join(dir, control), []byte(partial), 0o600); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, tc.file)
			read := p // what must keep its body
			switch {
			case tc.dir:
				read = filepath.Join(p, "inside")
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			case tc.link:
				read = filepath.Join(t.TempDir(), "target")
				if err := os.Symlink(read, p); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(read, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.open {
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
			var log strings.Builder
			c, rebuilt, err := OpenOrBuildLog(context.Background(), path, testKey(), &log, func() ([]Tokenized, error) { return randomDocs(5, 5, 1), nil })
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			if !rebuilt {
				t.Fatal("not rebuilt")
			}
			gone := []string{control}
			if tc.removed {
				gone = append(gone, tc.file)
			}
			for _, name := range gone {
				if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
					t.Errorf("the leftover %s is still there (%v)", name, err)
				}
				if !strings.Contains(log.String(), name) {
					t.Errorf("the log %q does not name the removed %s", log.String(), name)
				}
			}
			if tc.removed {
				return
			}
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("%s was removed: %v", tc.file, err)
			}
			if got, err := os.ReadFile(read); err != nil || string(got) != tc.body {
				t.Errorf("%s was changed: %v", tc.file, err)
			}
			if strings.Contains(log.String(), tc.file) {
				t.Errorf("the log %q names the kept %s", log.String(), tc.file)
			}
		})
	}
}

// TestWriteCacheRemovesKilledCacheTemps: WriteCache alone (no log) removes
// them too, and leaves only the cache.
func TestWriteCacheRemovesKilledCacheTemps(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("whether a process holds a file open is read from /proc")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c.tok")
	if err := os.WriteFile(filepath.Join(dir, ".c.tok.tmp-7"), []byte(cacheMagic+"\x04"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteCache(path, testKey(), randomDocs(3, 4, 1)); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "c.tok" {
		t.Errorf("the folder holds %v, want only c.tok", ents)
	}
}
