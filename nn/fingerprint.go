package nn

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ftune/ftune/internal/fsutil"
	"github.com/ftune/ftune/internal/safetensors"
)

// FingerprintScheme names how Fingerprint hashes a model folder; it is
// recorded beside the hash so a later scheme can tell old hashes apart.
const FingerprintScheme = "ftune-base-v1"

// Fingerprint spans: the head of each weight file (its header and first
// tensors) and evenly spread samples of the rest.
const (
	fingerprintHead    = 1 << 20
	fingerprintSpan    = 64 << 10
	fingerprintSamples = 16
)

// Fingerprint identifies the base a model folder holds, cheaply enough to
// check on every load: sha256 over config.json and, for each weight file
// (model.safetensors or the shards an index lists, sorted), its name, its
// size, its first MiB (the safetensors header with every name, dtype, shape
// and offset, then the first tensors) and 16 spans of 64 KiB spread evenly
// over the rest plus its last 64 KiB. It reads at most ~2.1 MiB per file
// whatever the model's size, and still tells apart two models of one
// architecture (a base and its instruct variant differ in nearly every
// weight, so in every sample). It is not a proof against a deliberate
// edit of unsampled bytes.
func Fingerprint(dir string) (string, error) {
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return "", fmt.Errorf("nn: fingerprint %s: %w", dir, err)
	}
	shards := set.Shards()
	set.Close()
	return fingerprintFiles(dir, shards)
}

func fingerprintFiles(dir string, shards []string) (string, error) {
	h := sha256.New()
	cfg, err := fsutil.ReadFileLimit(filepath.Join(dir, "config.json"), MaxConfigBytes)
	if err != nil {
		return "", fmt.Errorf("nn: fingerprint: %w", err)
	}
	fmt.Fprintf(h, "%s\x00config.json\x00%d\x00", FingerprintScheme, len(cfg))
	h.Write(cfg)
	for _, name := range shards {
		if err := fingerprintFile(h, filepath.Join(dir, name), name); err != nil {
			return "", fmt.Errorf("nn: fingerprint: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fingerprintFile(h io.Writer, path, name string) error {
	f, st, err := fsutil.OpenRegular(path) // a pipe would block the read
	if err != nil {
		return err
	}
	defer f.Close()
	size := st.Size()
	fmt.Fprintf(h, "%s\x00%d\x00", name, size)
	span := func(off, n int64) error {
		n = min(n, size-off)
		if n <= 0 {
			return nil
		}
		_, err := io.Copy(h, io.NewSectionReader(f, off, n))
		return err
	}
	if size <= fingerprintHead+(fingerprintSamples+1)*fingerprintSpan {
		return span(0, size) // small file: all of it
	}
	if err := span(0, fingerprintHead); err != nil {
		return err
	}
	rest := size - fingerprintHead - fingerprintSpan
	for i := int64(0); i < fingerprintSamples; i++ {
		if err := span(fingerprintHead+rest*i/fingerprintSamples, fingerprintSpan); err != nil {
			return err
		}
	}
	return span(size-fingerprintSpan, fingerprintSpan)
}

// Source says where a loaded model came from, so that an adapter trained
// on it can record its base (package lora) and be checked against it.
type Source struct {
	Dir  string // the folder it was loaded from
	Hash string // Fingerprint of that folder
}
