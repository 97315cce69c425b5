package fsutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// SHA256File is the size and hex SHA-256 of the regular file at path,
// opened as OpenRegular opens it: a named pipe put where a file was
// recorded is refused rather than waited on. Run manifests, checkpoint
// checksums and export records all hash files with it.
func SHA256File(path string) (size int64, sum string, err error) {
	f, _, err := OpenRegular(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	if size, err = io.Copy(h, f); err != nil {
		return 0, "", fmt.Errorf("hash %s: %w", path, err)
	}
	return size, hex.EncodeToString(h.Sum(nil)), nil
}
