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

// TestInitRefusesASymbolicLink: FILE a symbolic link is refused (exit 2),
// with or without --force, naming where it points and the command that
// writes that file; the link and the file it names are left as they were.
// The atomic rename replaced the link itself with --force (the file it
// named left stale, and the user's link gone), and a dangling link even
// without --force, which the existence check (following the link) missed.
// A link to a folder is a folder.
func TestInitRefusesASymbolicLink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	sub := filepath.Join(dir, "sub")
	for _, d := range []string{other, sub} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(other, "target.yaml")
	if err := os.WriteFile(target, []byte("the user's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link, dangling, folder := filepath.Join(sub, "link.yaml"), filepath.Join(sub, "dangling.yaml"), filepath.Join(sub, "folder")
	for l, to := range map[string]string{link: "../other/target.yaml", dangling: "../other/none.yaml", folder: "../other"} {
		if err := os.Symlink(to, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		path  string
		force bool
		want  string
	}{
		{link, false, link + " is a symbolic link to ../other/target.yaml: init neither writes through a link nor replaces one; name the file itself ("},
		{link, false, " init " + target + "), or remove the link"},
		{link, true, " init --force " + target + "), or remove the link"},
		{dangling, false, dangling + " is a symbolic link to ../other/none.yaml, which does not exist: init neither"},
		{dangling, true, " init " + filepath.Join(other, "none.yaml") + "), or remove"}, // no --force: nothing there
		{folder, true, folder + " is a folder: give the file to write"},
	} {
		args := []string{"init", c.path}
		if c.force {
			args = append(args, "--force")
		}
		code, stdout, stderr := exitOf(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 saying %q", args, code, stdout, stderr, c.want)
		}
	}
	for l, to := range map[string]string{link: "../other/target.yaml", dangling: "../other/none.yaml", folder: "../other"} {
		if got, err := os.Readlink(l); err != nil || got != to {
			t.Errorf("the link %s now reads %q (%v); want it left pointing to %s", l, got, err, to)
		}
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "the user's\n" {
		t.Errorf("the linked file now holds %q (%v)", b, err)
	}
	if ents, _ := os.ReadDir(other); len(ents) != 1 {
		t.Errorf("%s holds %d entries; want only target.yaml", other, len(ents))
	}
	if ents, _ := os.ReadDir(sub); len(ents) != 3 {
		t.Errorf("%s holds %d entries; want the three links, no temporary file", sub, len(ents))
	}
}
