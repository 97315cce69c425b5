package track

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// ErrAdapterChanged is CheckAdapter's error: a file of an adapter in a
// run folder is not what the run wrote.
var ErrAdapterChanged = errors.New("the adapter is not what its run wrote")

// maxManifestBytes bounds the manifest CheckAdapter reads: a run's lists
// a few hundred versions in well under a megabyte, and the folder an
// adapter sits in may come from anywhere.
const maxManifestBytes = 64 << 20

// runDepth is how far above an adapter folder its run folder may be:
// runs/r/adapter, runs/r/adapters/<subject>, runs/r/checkpoints/step-N/adapter.
const runDepth = 3

// CheckAdapter compares an adapter folder that lies in a run folder with
// the hashes the run recorded for it in manifest.json (the last version
// whose folder holds it): a file that differs in size or SHA-256, or that
// is missing, is refused naming it, since a damaged adapter loads and
// generates without a sign (a few flipped bits in the weights are finite
// numbers). A folder outside any run, or one the manifest does not list
// (a PEFT download, a copy), is not checked: nil; nor is one under a
// manifest.json that is not a run's. A file that is not regular (a named
// pipe) is refused without being opened for reading.
func CheckAdapter(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	run := abs
	for range runDepth {
		run = filepath.Dir(run)
		manifest := filepath.Join(run, ManifestFile)
		if _, err := os.Stat(manifest); err != nil {
			continue
		}
		// A manifest.json that is not a run's (a web app's, above a
		// downloaded adapter), or that cannot be read, vouches for
		// nothing: not checked, as outside a run.
		data, err := fsutil.ReadFileLimit(manifest, maxManifestBytes)
		if err != nil {
			return nil
		}
		var m Manifest
		if json.Unmarshal(data, &m) != nil || m.Run == "" {
			return nil
		}
		return checkAgainst(m, run, abs, dir, manifest)
	}
	return nil
}

// checkAgainst checks the adapter at abs (named dir to the user) against
// the last version of m, the manifest of the run folder run, whose folder
// is abs or holds it.
func checkAgainst(m Manifest, run, abs, dir, manifest string) error {
	for i := len(m.Versions) - 1; i >= 0; i-- {
		v := m.Versions[i]
		if !v.Removed.IsZero() || filepath.IsAbs(v.Path) {
			continue
		}
		rel, err := filepath.Rel(filepath.Join(run, filepath.FromSlash(v.Path)), abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		prefix := ""
		if rel != "." {
			prefix = filepath.ToSlash(rel) + "/"
		}
		checked := 0
		for _, f := range v.Files {
			name, ok := strings.CutPrefix(f.Path, prefix)
			if !ok || strings.Contains(name, "/") || !fs.ValidPath(name) {
				continue
			}
			checked++
			if err := sameFile(filepath.Join(abs, name), f); err != nil {
				return fmt.Errorf("adapter %s: %w: %s %s what the run recorded in %s (%s of step %d, %s): it changed after the run wrote it, damaged or replaced; train again, or copy the folder out of the run folder to load it as it is",
					dir, ErrAdapterChanged, path.Join(filepath.ToSlash(dir), name), err, manifest, v.Kind, v.Step, v.Time.Format("2006-01-02 15:04"))
			}
		}
		if checked > 0 {
			return nil
		}
	}
	return nil
}

// sameFile says how the file at p differs from its record, nil when its
// size and SHA-256 match. It is opened as a regular file or not at all: a
// named pipe put in its place would block the hash forever.
func sameFile(p string, want FileHash) error {
	size, sum, err := fsutil.SHA256File(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("is missing, unlike")
	case err != nil:
		return fmt.Errorf("cannot be read (%w), unlike", err)
	case size != want.Size:
		return fmt.Errorf("holds %d bytes, not the %d of", size, want.Size)
	case sum != want.SHA256:
		return fmt.Errorf("has SHA-256 %.12s…, not the %.12s… of", sum, want.SHA256)
	}
	return nil
}
