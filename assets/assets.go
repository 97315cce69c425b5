// Package assets embeds the defaults of the main job — the tiny-base model
// and the bundled subject datasets — so `ftune train` works from any
// directory and from a binary installed with `go install`. Materialize
// writes an embedded folder to the user's cache once (atomically) and
// returns its path, since model and data loaders read folders.
package assets

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed models/tiny-base/config.json models/tiny-base/model.safetensors models/tiny-base/tokenizer.json models/tiny-base/tokenizer_config.json models/tiny-base/chat_template.jinja models/tiny-base/generation_config.json models/tiny-base/README.md
var models embed.FS

//go:embed data/subjects data/README.md data/quiz/COPYRIGHT
var data embed.FS

// TinyBase is the embedded default base model's name.
const TinyBase = "tiny-base"

// Model returns the folder of an embedded model, written under the cache
// directory on first use.
func Model(name string) (string, error) {
	sub, err := fs.Sub(models, "models/"+name)
	if err != nil {
		return "", err
	}
	if _, err := fs.Stat(sub, "config.json"); err != nil {
		return "", fmt.Errorf("assets: no embedded model %q", name)
	}
	return Materialize(sub, "model-"+name)
}

// Subjects returns the folder of the bundled subject datasets (one folder
// per subject with train/val/test and subject.yaml), written under the
// cache directory on first use.
func Subjects() (string, error) {
	sub, err := fs.Sub(data, "data")
	if err != nil {
		return "", err
	}
	dir, err := Materialize(sub, "data")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "subjects"), nil
}

// CacheDir is where embedded folders are written: $FTUNE_CACHE, else the
// user cache directory, else the temp directory.
func CacheDir() string {
	if d := os.Getenv("FTUNE_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ftune")
	}
	return filepath.Join(os.TempDir(), "ftune-cache")
}

// Materialize copies an fs.FS into CacheDir()/<name>-<content hash> unless
// that folder exists, writing into a temporary folder and renaming it so a
// half-written copy is never used.
func Materialize(src fs.FS, name string) (string, error) {
	var files []string
	if err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}); err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := fs.ReadFile(src, f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	root := CacheDir()
	dst := filepath.Join(root, name+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("assets: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("assets: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range files {
		b, _ := fs.ReadFile(src, f)
		p := filepath.Join(tmp, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", fmt.Errorf("assets: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, statErr := os.Stat(dst); statErr == nil {
			return dst, nil // another process won the race
		}
		return "", fmt.Errorf("assets: %w", err)
	}
	return dst, nil
}
