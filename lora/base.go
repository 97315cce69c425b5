package lora

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/nn"
)

// BaseFile is ftune's record of the base model inside an adapter folder.
// It sits beside adapter_config.json rather than inside it: PEFT warns
// about keys its LoraConfig does not know, and ignores other files.
const BaseFile = "ftune_base.json"

// Base identifies the model an adapter was trained on: a name (what the
// user called it, e.g. "tiny-base" or a folder's name), the folder's path
// when it was trained, and nn.Fingerprint of that folder (Scheme says how
// the hash was computed).
type Base struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Hash   string `json:"sha256"`
	Scheme string `json:"hash_scheme"`
}

// IsZero reports whether nothing is recorded.
func (b Base) IsZero() bool { return b == Base{} }

// BaseOf describes the base a loaded model came from (zero for a model
// built in memory).
func BaseOf(m *nn.Model) Base {
	if m.Source.Dir == "" {
		return Base{}
	}
	return Base{Name: filepath.Base(m.Source.Dir), Path: m.Source.Dir, Hash: m.Source.Hash, Scheme: nn.FingerprintScheme}
}

// ErrBaseMismatch is wrapped when a model is not the base an adapter
// records (another hash).
var ErrBaseMismatch = errors.New("not the base the adapter was trained on")

// CheckBase reports whether m is the base b records: an error wrapping
// ErrBaseMismatch when both hashes are known and differ. An adapter with
// no record, or a model built in memory, passes (the tensor shapes are
// still checked when the adapter loads).
func CheckBase(b Base, m *nn.Model) error {
	if b.Hash == "" || m.Source.Hash == "" || b.Scheme != nn.FingerprintScheme {
		return nil
	}
	if b.Hash != m.Source.Hash {
		return fmt.Errorf("%w: the adapter records base %q (%s, sha256 %s), the model loaded from %s has sha256 %s",
			ErrBaseMismatch, b.Name, b.Path, short(b.Hash), m.Source.Dir, short(m.Source.Hash))
	}
	return nil
}

func short(h string) string { return h[:min(12, len(h))] }

// ErrBaseNotModel is wrapped when the path a base record names holds
// something other than a model folder: a file, or a folder without
// config.json or weights (the base replaced, or a record edited by hand).
var ErrBaseNotModel = errors.New("not a model folder")

// CheckPath reports whether b.Path still holds a model folder: nil when it
// has config.json and model.safetensors (or the index of its shards); an
// error wrapping fs.ErrNotExist when nothing is there (the base moved or
// was deleted); one wrapping ErrBaseNotModel when something else is. The
// errors name the path and, for something else, what was expected. The
// content is not hashed here (see CheckBase).
func (b Base) CheckPath() error {
	if b.Path == "" {
		return fmt.Errorf("the base record has no path (%w)", fs.ErrNotExist)
	}
	fi, err := os.Stat(b.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the recorded base path %s is gone (%w)", b.Path, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("the recorded base path: %w", err)
	}
	const want = "want a model folder: config.json and model.safetensors or model.safetensors.index.json"
	if !fi.IsDir() {
		return fmt.Errorf("the recorded base path %s is a file, %w (%s)", b.Path, ErrBaseNotModel, want)
	}
	var missing []string
	if !isFile(filepath.Join(b.Path, "config.json")) {
		missing = append(missing, "config.json")
	}
	if !isFile(filepath.Join(b.Path, "model.safetensors")) && !isFile(filepath.Join(b.Path, "model.safetensors.index.json")) {
		missing = append(missing, "model.safetensors")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the recorded base path %s is a folder without %s, %w (%s)", b.Path, strings.Join(missing, " or "), ErrBaseNotModel, want)
	}
	return nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// ReadBase reads an adapter folder's base record; ok is false when the
// folder has none (an adapter from PEFT, or from ftune before the record).
func ReadBase(dir string) (b Base, ok bool, err error) {
	path := filepath.Join(dir, BaseFile)
	data, err := fsutil.ReadFileLimit(path, maxConfigBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return Base{}, false, nil
	}
	if err != nil {
		return Base{}, false, fmt.Errorf("lora: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Base{}, false, fmt.Errorf("lora: %s: %w (want {\"name\", \"path\", \"sha256\", \"hash_scheme\"})", path, err)
	}
	return b, true, nil
}

// WriteBase writes b into an adapter folder, atomically.
func WriteBase(dir string, b Base) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, BaseFile), append(data, '\n'), 0o644)
}
