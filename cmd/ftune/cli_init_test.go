package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestInitRefusesWhatIsNotAFile: ftune init writes a file. A folder is
// refused (exit 2) with or without --force, saying what to give (it said
// "use --force to overwrite", and --force then failed renaming over the
// folder), and so is any other file that is not a regular one (a rename
// would replace a device or a pipe); --force replaces a regular file.
func TestInitRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	for _, force := range []bool{false, true} {
		args := []string{"init", dir}
		if force {
			args = append(args, "--force")
		}
		code, _, stderr := exitOf(t, args...)
		want := dir + " is a folder: give the file to write, e.g. "
		if code != 2 || !strings.Contains(stderr, want) || !strings.Contains(stderr, filepath.Join(dir, "run.yaml")) {
			t.Errorf("%v: exit %d, %q; want exit 2 saying %q", args, code, stderr, want)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("the folder holds %d entries (%v) after init refused it", len(ents), err)
	}
	if runtime.GOOS != "windows" {
		fifo := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, stderr := exitOf(t, "init", fifo, "--force"); code != 2 || !strings.Contains(stderr, "is not a regular file") {
			t.Errorf("init a pipe --force: exit %d, %q", code, stderr)
		}
		if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("the pipe was replaced: %v %v", st.Mode(), err)
		}
	}
	file := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(file, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := exitOf(t, "init", file); code != 1 || !strings.Contains(stderr, "exists (use --force to overwrite)") {
		t.Errorf("init an existing file: exit %d, %q", code, stderr)
	}
	if code, stdout, stderr := exitOf(t, "init", file, "--force"); code != 0 || !strings.Contains(stdout, "wrote "+file) {
		t.Errorf("init an existing file --force: exit %d, %q %q", code, stdout, stderr)
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "max_length:") {
		t.Errorf("--force did not write the config: %v\n%s", err, b)
	}
}
