package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is what a TooLargeError matches with errors.Is.
var ErrTooLarge = errors.New("file too large")

// TooLargeError is ReadFileLimit's refusal of a file over its limit.
type TooLargeError struct {
	Path  string
	Size  int64 // -1 when the file gave no size (a pipe) and the read ran past Limit
	Limit int64
}

func (e *TooLargeError) Error() string {
	size := "more than " + formatBytes(e.Limit)
	if e.Size >= 0 {
		size = formatBytes(e.Size)
	}
	return fmt.Sprintf("%s is %s; ftune reads at most %s of such a file (it is not one, or it is corrupt)", e.Path, size, formatBytes(e.Limit))
}

func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// ReadFileLimit reads a whole file that is parsed in memory (a model's
// config.json, tokenizer.json or chat template) and refuses one larger than
// limit before reading it. These files arrive with downloaded models: a
// corrupt or hostile one must fail with its name and size, never exhaust
// memory. The read is bounded too, for files whose size stat cannot give
// (pipes, devices) or that grow while read.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, &TooLargeError{Path: path, Size: fi.Size(), Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: path, Size: -1, Limit: limit}
	}
	return b, nil
}

// formatBytes writes n in the largest binary unit that keeps it at least 1
// (512 B, 16.0 MiB, 1.5 GiB).
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}
