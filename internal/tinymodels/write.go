package tinymodels

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/safetensors"
	"github.com/ftune/ftune/internal/testutil"
)

// WeightsFile is the name of the generated file in a family's folder.
const WeightsFile = "model.safetensors"

// TokenizerFile is every family folder's tokenizer: tiny-base's (byte-level
// BPE, 4096 ids), the same bytes in each. It is copied there from
// tokenizerSource rather than committed once per folder (2 MB of
// duplicates, counted against what a GPU session can carry).
const TokenizerFile = "tokenizer.json"

// tokenizerSource is the committed tokenizer, relative to the module root,
// and tokenizerSHA256 its sha256 (the file the folders held when it was
// committed in each).
const (
	tokenizerSource = "assets/models/tiny-base/tokenizer.json"
	tokenizerSHA256 = "34f1067670ff142386ecd771de665b55195d0e36dd54f344d731bd94e268f249"
)

// Families lists the families this package generates, sorted.
func Families() []string {
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookup(name string) (family, error) {
	f, ok := families[name]
	if !ok {
		return family{}, fmt.Errorf("tiny model family %q: unknown, want one of %s", name, strings.Join(Families(), ", "))
	}
	return f, nil
}

// Tensors draws a family's weights: tensors in sorted name order, every
// element from one PCG stream.
func Tensors(name string) ([]safetensors.Tensor, error) {
	f, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return testutil.SeededF32Tensors(f.shapes(), rand.New(rand.NewPCG(f.seed, f.stream)), f.draw), nil
}

// SHA256 is the hex sha256 of the model.safetensors a family's seed gives.
func SHA256(name string) (string, error) {
	f, err := lookup(name)
	if err != nil {
		return "", err
	}
	return f.sha256, nil
}

// Write writes a family's model.safetensors into dir (which must exist),
// atomically: a reader sees no file, the old one or the whole new one.
func Write(dir, name string) error {
	tensors, err := Tensors(name)
	if err != nil {
		return err
	}
	return safetensors.Write(filepath.Join(dir, WeightsFile), tensors, map[string]string{"format": "pt"})
}

// Ensure makes dir/model.safetensors the family's weights: a file with
// the recorded sha256 is kept, anything else (absent, stale, truncated) is
// rewritten, and the result is checked against the recorded sha256, so a
// generator that drifted from the committed bytes is an error rather than
// weights the golden logits were not computed on. wrote says whether it
// wrote the file.
//
// It also puts TokenizerFile in place (ensureTokenizer).
func Ensure(dir, name string) (wrote bool, err error) {
	f, err := lookup(name)
	if err != nil {
		return false, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return false, fmt.Errorf("%s-tiny weights: folder %s does not exist (it holds the committed config.json)", name, dir)
	}
	if err := ensureTokenizer(dir); err != nil {
		return false, err
	}
	path := filepath.Join(dir, WeightsFile)
	sum, err := fileSHA256(path)
	switch {
	case err == nil && sum == f.sha256:
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if err := Write(dir, name); err != nil {
		return false, err
	}
	sum, err = fileSHA256(path)
	if err != nil {
		return true, err
	}
	if sum != f.sha256 {
		return true, fmt.Errorf("%s: generated %s-tiny weights have sha256 %s, want %s: the generator in internal/tinymodels no longer gives the bytes the golden logits were computed on", path, name, sum, f.sha256)
	}
	return true, nil
}

// ensureTokenizer makes dir/tokenizer.json tiny-base's tokenizer, copied
// atomically from the module's tokenizerSource when absent or different,
// and checks the copy's sha256.
func ensureTokenizer(dir string) error {
	path := filepath.Join(dir, TokenizerFile)
	if sum, err := fileSHA256(path); err == nil && sum == tokenizerSHA256 {
		return nil
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	src := filepath.Join(root, tokenizerSource)
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("tiny model tokenizer: %w", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != tokenizerSHA256 {
		return fmt.Errorf("tiny model tokenizer: %s has sha256 %x, want %s: the tiny folders' tokenizer changed", src, sum, tokenizerSHA256)
	}
	if err := fsutil.WriteFileAtomic(path, b, 0o644); err != nil {
		return fmt.Errorf("tiny model tokenizer: %w", err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
