package track

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ftune/ftune/internal/fsutil"
)

// Manifest lists a run's model versions: manifest.json.
type Manifest struct {
	Run       string     `json:"run"`
	Created   time.Time  `json:"created"`
	BaseModel []FileHash `json:"base_model,omitempty"` // as set by SetInputs
	Data      []FileHash `json:"data,omitempty"`
	Versions  []Version  `json:"versions"`
}

// Version is one checkpoint or export, with everything needed to say
// which base model, data and adapter produced which metrics.
type Version struct {
	Kind      string     `json:"kind"` // "checkpoint", "export/peft", "export/gguf", ...
	Path      string     `json:"path"` // relative to the run folder when inside it
	Step      int        `json:"step"`
	Time      time.Time  `json:"time"`
	Files     []FileHash `json:"files"` // the adapter (or exported) files
	BaseModel []FileHash `json:"base_model,omitempty"`
	Data      []FileHash `json:"data,omitempty"`
	Metrics   Values     `json:"metrics"`
	// Removed is when the run found the version's folder gone: a
	// checkpoint that keep_last (train.Prune) deleted once newer ones
	// were saved. The entry stays, its step, metrics and hashes being the
	// run's history (and a copy kept elsewhere is still matched by its
	// hashes); a reader after a version to load skips it.
	Removed time.Time `json:"removed,omitzero"`
}

// FileHash identifies a file's content.
type FileHash struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ReadManifest reads a run's manifest.json.
func ReadManifest(path string) (Manifest, error) {
	var m Manifest
	data, err := fsutil.ReadFileLimit(path, maxManifestBytes)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// hashCache remembers file hashes by path, size and modification time, so
// that a multi-gigabyte base model is read once per run, not once per
// checkpoint.
type hashCache map[string]cachedHash

type cachedHash struct {
	size int64
	mod  time.Time
	sum  string
}

func (c hashCache) hashFile(path string) (int64, string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, "", err
	}
	if h, ok := c[path]; ok && h.size == st.Size() && h.mod.Equal(st.ModTime()) {
		return h.size, h.sum, nil
	}
	n, sum, err := fsutil.SHA256File(path)
	if err != nil {
		return 0, "", err
	}
	c[path] = cachedHash{size: n, mod: st.ModTime(), sum: sum}
	return n, sum, nil
}

// hashPaths hashes files; a directory stands for every regular file below
// it; "" stands for nothing (e.g. data embedded in the binary). Each
// FileHash.Path is relative to base when the file is inside base.
func (c hashCache) hashPaths(paths []string, base string) ([]FileHash, error) {
	var files []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, q)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	out := make([]FileHash, 0, len(files))
	for _, f := range files {
		size, sum, err := c.hashFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, FileHash{Path: relTo(base, f), Size: size, SHA256: sum})
	}
	return out, nil
}

// relTo is p relative to base when p lies inside base, else p unchanged.
func relTo(base, p string) string {
	if base == "" {
		return p
	}
	ab, err1 := filepath.Abs(base)
	ap, err2 := filepath.Abs(p)
	if err1 != nil || err2 != nil {
		return p
	}
	r, err := filepath.Rel(ab, ap)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return p
	}
	return filepath.ToSlash(r)
}

// WeightsFile is the version's file holding the weights: the first
// .safetensors, .gguf or .bin file, else the first file. Its hash tells
// two versions apart (adapter_config.json, first by name, is the same
// across every checkpoint of a run).
func (v Version) WeightsFile() (FileHash, bool) {
	for _, f := range v.Files {
		switch strings.ToLower(filepath.Ext(f.Path)) {
		case ".safetensors", ".gguf", ".bin":
			return f, true
		}
	}
	if len(v.Files) > 0 {
		return v.Files[0], true
	}
	return FileHash{}, false
}

// Kept counts the versions still there: those keep_last has not removed.
func (m Manifest) Kept() int {
	n := 0
	for _, v := range m.Versions {
		if v.Removed.IsZero() {
			n++
		}
	}
	return n
}
