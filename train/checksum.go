package train

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
)

// checksumFile lists the sha256 of every other file of a checkpoint, in
// sha256sum's format ("<hex>  <path>"), so `sha256sum -c checksums.sha256`
// checks one by hand too. LoadCheckpoint verifies it before reading: a
// checkpoint whose tensors were altered or damaged is refused, naming the
// file. Checkpoints written before it existed have none and load as they
// are.
const checksumFile = "checksums.sha256"

// checkpointMetaLimit bounds the checkpoint files read whole (the checksums
// and trainer.json, which holds the data order: megabytes for millions of
// rows).
const checkpointMetaLimit = 256 << 20

// ErrChecksum means a checkpoint file does not match its recorded sha256.
var ErrChecksum = errors.New("sha256 mismatch")

// writeChecksums hashes every regular file under dir into checksumFile.
func writeChecksums(dir string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && p != filepath.Join(dir, checksumFile) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("train: checksums: %w", err)
	}
	sort.Strings(files)
	var b bytes.Buffer
	for _, p := range files {
		sum, err := sha256File(p)
		if err != nil {
			return fmt.Errorf("train: checksums: %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s  %s\n", sum, filepath.ToSlash(rel))
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, checksumFile), b.Bytes(), 0o644)
}

// verifyChecksums checks every file listed in dir's checksumFile.
func verifyChecksums(dir string) error {
	// Bounded and regular files only: a run folder may come from anywhere,
	// and a named pipe in it blocked the resume where no Ctrl-C reaches.
	data, err := fsutil.ReadFileLimit(filepath.Join(dir, checksumFile), checkpointMetaLimit)
	if errors.Is(err, os.ErrNotExist) {
		return nil // written before checksums existed
	}
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		want, rel, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(want) != sha256.Size*2 || rel == "" || strings.Contains(rel, "..") {
			return fmt.Errorf("%s:%d: want \"<sha256>  <file>\", got %q", checksumFile, n, sc.Text())
		}
		got, err := sha256File(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: %w (altered or damaged since the checkpoint was written)", rel, ErrChecksum)
		}
	}
	return sc.Err()
}

func sha256File(path string) (string, error) {
	_, sum, err := fsutil.SHA256File(path)
	return sum, err
}
