package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// ManifestFile is the record of a folder that ftune exported: its format,
// what it was made from and when, and each file it wrote with its content
// hash. Only a folder whose every file the record lists, unchanged, in the
// format being written, is ever replaced by an export; any other
// non-empty folder is the user's (or another export's, which the user may
// still want), refused without force.
const ManifestFile = "ftune_export.json"

// manifest is ManifestFile's content. Records that ftune wrote before
// they held hashes have Files alone (and the format): such a record
// proves nothing of the files (a user's file moved in keeps its old
// time), and its folder is never replaced without force.
type manifest struct {
	WrittenBy string   `json:"written_by"` // "ftune"
	Format    string   `json:"format"`     // "merged", "peft"
	Files     []string `json:"files"`      // every other file ftune wrote there
	// SHA256 is each file's content hash (hex), by name: a file that no
	// longer matches was changed after the export (the user's edit).
	SHA256 map[string]string `json:"sha256,omitempty"`
	// ExportedAt is when the export was written (RFC 3339), and From what
	// it was made from (the adapter folder, as the user named it): what
	// the note of a later export that replaces it says.
	ExportedAt string `json:"exported_at,omitempty"`
	From       string `json:"from,omitempty"`
}

// writeManifest records dir's files (written by this export) and their
// hashes in ManifestFile.
func writeManifest(dir, format, from string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	m := manifest{WrittenBy: "ftune", Format: format, SHA256: map[string]string{}, ExportedAt: time.Now().Format(time.RFC3339), From: from}
	for _, e := range ents {
		if e.Name() == partialMarker || e.Name() == ManifestFile {
			continue
		}
		m.Files = append(m.Files, e.Name())
		if !e.Type().IsRegular() {
			continue // no hash: such an entry is refused as changed
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if m.SHA256[e.Name()], err = fileSHA256(p, fi); err != nil {
			return err
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return fsutil.WriteFileAtomic(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644)
}

// readManifest reads dir's record; ok is false when there is none that
// ftune wrote (no file, unreadable, another writer's), and at is when it
// says it was written (or its file's time): for notes only, never to
// decide whether a file changed (the record's file may be edited too).
func readManifest(dir string) (m manifest, at time.Time, ok bool) {
	p := filepath.Join(dir, ManifestFile)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return manifest{}, time.Time{}, false
	}
	b, err := fsutil.ReadFileLimit(p, 64<<20)
	if err != nil || json.Unmarshal(b, &m) != nil || m.WrittenBy != "ftune" {
		return manifest{}, time.Time{}, false
	}
	at = fi.ModTime()
	if t, err := time.Parse(time.RFC3339, m.ExportedAt); err == nil {
		at = t
	}
	return m, at, true
}

// previous is the earlier export at an output folder, as its record says.
type previous struct {
	rec manifest
	at  time.Time
}

// String says what the export was, for the note of the export replacing
// it: "a PEFT adapter exported 2026-12-07 20:57:40 from runs/a/adapter".
func (p previous) String() string {
	s := fmt.Sprintf("%s exported %s", describeFormat(p.rec.Format), p.at.Local().Format("2006-01-02 15:04:05"))
	if p.rec.From != "" {
		s += " from " + p.rec.From
	}
	return s
}

// describeFormat names what a folder export of format holds.
func describeFormat(format string) string {
	switch format {
	case "merged":
		return "a merged model"
	case "peft":
		return "a PEFT adapter"
	}
	return fmt.Sprintf("a %q export", format)
}

// folderProblem says why the folder dir may not be replaced by an export
// of format without force (why, wrapping ErrNotOurs, ErrOtherKind,
// ErrEdited or ErrUnverifiable), and what earlier export of ftune's is
// there (prev, when its record is ftune's). A missing or empty folder has neither. format ""
// takes an export of any format (a folder at a temporary name).
//
// A file changed since the export is one whose content no longer has the
// record's SHA-256. A record of an earlier ftune holds no hashes and
// proves nothing (ErrUnverifiable): no time decides, neither the files'
// (a file moved in keeps its own) nor the record's (which can say
// anything).
func folderProblem(dir, format string) (prev *previous, why error, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	if len(ents) == 0 {
		return nil, nil, nil
	}
	rec, at, ours := readManifest(dir) // at: for the notes only
	if ours {
		prev = &previous{rec, at}
	}
	var foreign, listed []string
	for _, e := range ents {
		switch {
		case ours && e.Name() == ManifestFile:
		case !ours || e.IsDir() || !slices.Contains(rec.Files, e.Name()):
			foreign = append(foreign, e.Name())
		default:
			listed = append(listed, e.Name())
		}
	}
	switch {
	case len(foreign) > 0:
		return prev, fmt.Errorf("%w (%s)", ErrNotOurs, listSome(foreign)), nil
	case format != "" && rec.Format != format:
		from := ""
		if rec.From != "" {
			from = " from " + rec.From
		}
		return prev, fmt.Errorf("the folder holds %s that ftune exported%s, and this writes %s (%w)", describeFormat(rec.Format), from, describeFormat(format), ErrOtherKind), nil
	}
	if rec.SHA256 == nil {
		return prev, fmt.Errorf("%w (its %s, written by an earlier ftune, lists %s but holds no content hashes, so whether the user changed or put in any of them since cannot be told)", ErrUnverifiable, ManifestFile, listSome(listed)), nil
	}
	// Hashed last: a model's weights take seconds.
	var changed []string
	for _, name := range listed {
		same, err := unchanged(filepath.Join(dir, name), rec)
		if err != nil {
			return prev, nil, err
		}
		if !same {
			changed = append(changed, name)
		}
	}
	if len(changed) > 0 {
		return prev, fmt.Errorf("%s %w (the content no longer has the SHA-256 that %s records)", listSome(changed), ErrEdited, ManifestFile), nil
	}
	return prev, nil, nil
}

// unchanged reports whether the file at p, listed in rec (which holds
// hashes), is as the export wrote it.
func unchanged(p string, rec manifest) (bool, error) {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true, nil // gone meanwhile: nothing of it to lose
	case err != nil:
		return false, fmt.Errorf("export: %w", err)
	case !fi.Mode().IsRegular():
		return false, nil
	}
	want, ok := rec.SHA256[filepath.Base(p)]
	if !ok {
		return false, nil
	}
	got, err := fileSHA256(p, fi)
	return got == want, err
}

// sums caches the hashes fileSHA256 computed, by path: an export checks
// the folder it replaces twice (before its work and again before the
// swap), and a model's weights take seconds to hash. An entry serves
// only the same file (os.SameFile) of the same size and time.
var sums = struct {
	sync.Mutex
	m map[string]cachedSum
}{m: map[string]cachedSum{}}

type cachedSum struct {
	fi  os.FileInfo
	sum string
}

// fileSHA256 is the hex SHA-256 of the regular file at p, whose Lstat is fi.
func fileSHA256(p string, fi os.FileInfo) (string, error) {
	sums.Lock()
	c, ok := sums.m[p]
	sums.Unlock()
	if ok && os.SameFile(c.fi, fi) && c.fi.Size() == fi.Size() && c.fi.ModTime().Equal(fi.ModTime()) {
		return c.sum, nil
	}
	_, sum, err := fsutil.SHA256File(p)
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	sums.Lock()
	sums.m[p] = cachedSum{fi, sum}
	sums.Unlock()
	return sum, nil
}
