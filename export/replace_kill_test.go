package export

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// fillWeights is an export's fill for tests that need no model.
func fillWeights(content string) func(tmp string) error {
	return func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "weights.bin"), []byte(content), 0o644)
	}
}

// whereIs lists the folders beside out (out included) whose notes.txt
// holds the user's notes.
func whereIs(t *testing.T, out string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(out))
	if err != nil {
		t.Fatal(err)
	}
	var at []string
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(out), e.Name(), "notes.txt")); err == nil && string(b) == "my precious notes" {
			at = append(at, e.Name())
		}
	}
	return at
}

// checkExport fails unless out is a complete export of content, with no
// temporary folder beside it.
func checkExport(t *testing.T, out, content string) {
	t.Helper()
	if got := mustRead(t, filepath.Join(out, "weights.bin")); got != content {
		t.Fatalf("%s holds %q, want %q", out, got, content)
	}
	if _, why, err := folderProblem(out, ""); err != nil || why != nil {
		t.Fatalf("%s is not an export as its record says: %v (%v)", out, why, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")); len(left) != 0 {
		t.Fatalf("temporary folders left beside %s: %v", out, left)
	}
}

// The auditor's case: an older ftune, killed between its exchange and the
// rename after it, left the user's folder at a temporary name. The next
// export keeps it under a name of its own and says so; what is provably
// ftune's (a marked partial export, a complete one, an empty folder) goes.
func TestKilledTempsKeepUsersFolder(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	writeFiles(t, filepath.Join(dir, ".out.tmp-1824375233"), map[string]string{"notes.txt": "my precious notes"})
	writeFiles(t, filepath.Join(dir, ".out.tmp-1"), map[string]string{partialMarker: "", "weights.bin": "half"})
	done := filepath.Join(dir, ".out.tmp-2")
	writeFiles(t, done, map[string]string{"weights.bin": "all"})
	if err := writeManifest(done, "test", ""); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, filepath.Join(dir, ".out.tmp-3"), nil)

	notes, err := writeFolder(out, "test", "", false, fillWeights("new"))
	if err != nil {
		t.Fatal(err)
	}
	checkExport(t, out, "new")
	at := whereIs(t, out)
	if len(at) != 1 || !strings.HasPrefix(at[0], "out.replaced-") {
		t.Fatalf("the user's folder is at %v, want one out.replaced-<time>", at)
	}
	all := strings.Join(notes, "\n")
	if !strings.Contains(all, ".out.tmp-1824375233 (now "+filepath.Join(dir, at[0])+")") || !strings.Contains(all, "nothing deleted") {
		t.Errorf("notes %q do not say where the user's folder went", notes)
	}
	for _, name := range []string{".out.tmp-1", ".out.tmp-2", ".out.tmp-3"} {
		if !strings.Contains(all, name) {
			t.Errorf("notes %q do not name the removed %s", notes, name)
		}
	}
}

// Every step of install can be where a kill lands. Stopped there, the
// user's folder must be at out or at a name of its own (never only at a
// temporary name), and after the next export still be there, with out the
// new export and nothing at a temporary name. Both with the atomic
// exchange and without it (other systems, file systems without it).
func TestInstallKilledAtEveryStep(t *testing.T) {
	for _, atomic := range []bool{true, false} {
		if atomic && runtime.GOOS != "linux" {
			continue
		}
		for _, users := range []bool{true, false} {
			// The steps install passes on each way: the exchange needs no
			// undoing and moving aside; only an earlier export of ftune's
			// is swapped out to be deleted.
			steps := []string{"staged"}
			if !atomic {
				steps = append(steps, "unstaged", "moved aside")
			}
			if !users {
				steps = append(steps, "swapped")
			}
			for _, step := range steps {
				t.Run(fmt.Sprintf("atomic=%v/users=%v/%s", atomic, users, step), func(t *testing.T) {
					testKilledAt(t, atomic, users, step)
				})
			}
		}
	}
}

func testKilledAt(t *testing.T, atomic, users bool, step string) {
	if !atomic {
		exchangeFolders = func(a, b string) error { return errors.ErrUnsupported }
		t.Cleanup(func() { exchangeFolders = exchange })
	}
	out := filepath.Join(t.TempDir(), "out")
	if users {
		writeFiles(t, out, map[string]string{"notes.txt": "my precious notes", "weights.bin": "theirs"})
	} else if _, err := writeFolder(out, "test", "", false, fillWeights("old")); err != nil {
		t.Fatal(err)
	}
	tmp, release, err := startTemp(out)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := fillWeights("killed")(tmp); err != nil {
		t.Fatal(err)
	}
	if err := sealTemp(tmp, "test", ""); err != nil {
		t.Fatal(err)
	}
	reached := false
	stopInstall = func(s string) bool { reached = reached || s == step; return s == step }
	_, err = install(tmp, out, "test", users)
	stopInstall = func(string) bool { return false }
	release() // as the kill would
	if !reached {
		t.Fatalf("install never reached step %q (%v)", step, err)
	}
	if !errors.Is(err, errStopped) {
		t.Fatalf("install did not stop at %q: %v", step, err)
	}
	if users {
		at := whereIs(t, out)
		if !slices.ContainsFunc(at, func(n string) bool { return n == "out" || strings.HasPrefix(n, "out.replaced-") }) {
			t.Fatalf("killed at %q: the user's folder is only at %v", step, at)
		}
	}

	notes, err := writeFolder(out, "test", "", users, fillWeights("next"))
	if err != nil {
		t.Fatalf("the export after the kill: %v", err)
	}
	checkExport(t, out, "next")
	aside, _ := filepath.Glob(out + ".replaced-*")
	if users {
		at := whereIs(t, out)
		if len(at) == 0 || !strings.HasPrefix(at[0], "out.replaced-") {
			t.Fatalf("after the next export (notes %q) the user's folder is at %v", notes, at)
		}
	} else if len(aside) != 0 {
		t.Fatalf("ftune's own folders were kept aside: %v", aside)
	}
}

// The user may add files to an earlier export during the minutes an
// export over it takes: install checks again, refusing without force
// (the file stays in place) and moving the folder aside with it.
func TestInstallRechecksTheFolder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, err := writeFolder(out, "test", "", false, fillWeights("old")); err != nil {
		t.Fatal(err)
	}
	addNotes := func(tmp string) error {
		writeFiles(t, out, map[string]string{"notes.txt": "my precious notes"})
		return fillWeights("new")(tmp)
	}
	if _, err := writeFolder(out, "test", "", false, addNotes); !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("export over a folder the user added to meanwhile: %v, want ErrNotOurs naming notes.txt", err)
	}
	if at := whereIs(t, out); len(at) != 1 || at[0] != "out" || mustRead(t, filepath.Join(out, "weights.bin")) != "old" {
		t.Fatalf("the refused export changed out (the notes are at %v)", at)
	}
	if err := os.Remove(filepath.Join(out, "notes.txt")); err != nil {
		t.Fatal(err)
	}
	notes, err := writeFolder(out, "test", "", true, addNotes)
	if err != nil {
		t.Fatal(err)
	}
	checkExport(t, out, "new")
	if at := whereIs(t, out); len(at) != 1 || !strings.HasPrefix(at[0], "out.replaced-") || !strings.Contains(strings.Join(notes, "\n"), at[0]) {
		t.Fatalf("--force: the notes are at %v; notes %q", at, notes)
	}
}

// takeNames puts something of its own at every path.replaced-<time> the
// next seconds could name; mk makes one. It returns them.
func takeNames(t *testing.T, path string, mk func(p string)) []string {
	t.Helper()
	var taken []string
	now := time.Now()
	for s := -1; s <= 5; s++ {
		p := fmt.Sprintf("%s.replaced-%s", path, now.Add(time.Duration(s)*time.Second).Format("20060102-150405"))
		mk(p)
		taken = append(taken, p)
	}
	return taken
}

// A kept name already taken (an earlier --force the same second) is not
// written over, nor is the user's folder lost when it cannot be moved
// there: the next free name is used, for folders and files.
func TestKeptNameTaken(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	writeFiles(t, out, map[string]string{"notes.txt": "my precious notes"})
	taken := takeNames(t, out, func(p string) { writeFiles(t, p, map[string]string{"earlier.txt": p}) })
	if _, err := writeFolder(out, "test", "", true, fillWeights("new")); err != nil {
		t.Fatal(err)
	}
	checkExport(t, out, "new")
	if at := whereIs(t, out); len(at) != 1 || !strings.HasPrefix(at[0], "out.replaced-") {
		t.Fatalf("the user's folder is at %v", at)
	}
	for _, p := range taken {
		if got := mustRead(t, filepath.Join(p, "earlier.txt")); got != p {
			t.Errorf("%s changed: %q", p, got)
		}
	}

	file := filepath.Join(t.TempDir(), "m.gguf")
	writeFiles(t, filepath.Dir(file), map[string]string{"m.gguf": "the user's"})
	taken = takeNames(t, file, func(p string) { writeFiles(t, filepath.Dir(p), map[string]string{filepath.Base(p): p}) })
	rule := FileRule{Ours: func(string) error { return ErrNotOurs }}
	kept, _, err := ReplaceFile(file, true, rule, func() error { return fsutil.WriteFileAtomic(file, []byte("OURS"), 0o644) })
	if err != nil || slices.Contains(taken, kept) || mustRead(t, kept) != "the user's" {
		t.Fatalf("kept at %q (err %v), want a free name holding the user's file", kept, err)
	}
	for _, p := range taken {
		if got := mustRead(t, p); got != p {
			t.Errorf("%s was written over: %q", p, got)
		}
	}
}

// A GGUF write with --force killed mid-write (the write panics: ReplaceFile
// undoes nothing, as a kill) leaves the user's file, itself a GGUF that
// ftune did not write, at its path (and under its kept name, a second name
// of the same file); the next write removes only the killed write's
// temporary file. The file was moved to its kept name before the write,
// and a kill left the path missing, the file's new name said nowhere.
func TestReplaceFileKilledMidWrite(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("whether a process holds a file open is read from /proc")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	theirs := "GGUF\x03\x00\x00\x00the user's llama.cpp model"
	writeFiles(t, dir, map[string]string{"m.gguf": theirs})
	rule := FileRule{Ours: func(p string) error {
		if mustRead(t, p) == "OURS" {
			return nil
		}
		return ErrNotOurs
	}}
	partial := filepath.Join(dir, ".m.gguf.tmp-77")
	func() {
		defer func() { _ = recover() }()
		ReplaceFile(path, true, rule, func() error {
			writeFiles(t, dir, map[string]string{filepath.Base(partial): "GGUF\x03\x00\x00\x00half"})
			panic("killed")
		})
	}()
	if got, err := os.ReadFile(path); err != nil || string(got) != theirs {
		t.Fatalf("after the kill %s holds %q (%v); want the user's file still there", path, got, err)
	}
	kept, _ := filepath.Glob(path + ".replaced-*")
	if len(kept) != 1 || mustRead(t, kept[0]) != theirs {
		t.Fatalf("after the kill the user's file has no kept name: %v", kept)
	}
	kept2, notes, err := ReplaceFile(path, true, rule, func() error { return fsutil.WriteFileAtomic(path, []byte("OURS"), 0o644) })
	if err != nil || mustRead(t, path) != "OURS" {
		t.Fatalf("the write after the kill: %v", err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) || !strings.Contains(strings.Join(notes, "\n"), filepath.Base(partial)) {
		t.Errorf("the killed write's temporary file: %v, notes %q", err, notes)
	}
	if mustRead(t, kept2) != theirs {
		t.Fatalf("the next write lost the user's file (kept at %s)", kept2)
	}
	// The killed write's second name of the same file goes, said (the
	// new kept name may reuse it, within the same second): the user's
	// file has one kept name.
	names, _ := filepath.Glob(path + ".replaced-*")
	if len(names) != 1 || names[0] != kept2 || !strings.Contains(strings.Join(notes, "\n"), "removed "+kept[0]+": second name(s) of "+path) {
		t.Errorf("kept names %v (want only %s), notes %q", names, kept2, notes)
	}
	// A kept name of another file (a file a forced write replaced) stays.
	writeFiles(t, dir, map[string]string{"m.gguf": theirs + " v2"})
	kept3, _, err := ReplaceFile(path, true, rule, func() error { return fsutil.WriteFileAtomic(path, []byte("OURS"), 0o644) })
	if err != nil || mustRead(t, kept2) != theirs || mustRead(t, kept3) != theirs+" v2" {
		t.Errorf("a forced write after another removed a kept file: %v", err)
	}
}

// TestReplaceFileForceKeepsPathDuringWrite: with force, the user's file
// stays at its path while the write runs (minutes for a GGUF model), until
// the write's rename puts the new file there, and is kept at the returned
// name after; a failed write leaves it at its path alone. It was moved to
// its kept name before the write, leaving the path missing meanwhile (and,
// had the export been killed, the file under a name no line had printed).
// Where the file system has no hard links, the file is moved aside as it
// was, and moved back if the write fails.
func TestReplaceFileForceKeepsPathDuringWrite(t *testing.T) {
	rule := FileRule{Ours: func(string) error { return ErrNotOurs }}
	for _, links := range []bool{true, false} {
		t.Run(fmt.Sprintf("hard links %v", links), func(t *testing.T) {
			if !links {
				defer func(f func(string, string) error) { linkAside = f }(linkAside)
				linkAside = func(string, string) error { return errors.ErrUnsupported }
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "m.gguf")
			writeFiles(t, dir, map[string]string{"m.gguf": "the user's"})
			var during string
			write := func() error {
				b, _ := os.ReadFile(path)
				during = string(b)
				return fsutil.WriteFileAtomic(path, []byte("OURS"), 0o644)
			}
			if _, _, err := ReplaceFile(path, true, rule, func() error { return errors.New("disk full") }); err == nil || mustRead(t, path) != "the user's" {
				t.Fatalf("a failed write: %v; want its error and the user's file at its path", err)
			}
			if left, _ := filepath.Glob(path + ".replaced-*"); len(left) != 0 {
				t.Fatalf("a failed write left %v", left)
			}
			kept, _, err := ReplaceFile(path, true, rule, write)
			if err != nil || mustRead(t, path) != "OURS" || kept == "" || mustRead(t, kept) != "the user's" {
				t.Fatalf("kept at %q, err %v; want the new file at its path, the user's kept", kept, err)
			}
			if want := map[bool]string{true: "the user's", false: ""}[links]; during != want {
				t.Errorf("during the write %s held %q; want %q", path, during, want)
			}
		})
	}
}
