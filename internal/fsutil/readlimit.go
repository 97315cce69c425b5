package fsutil

import (
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is what a TooLargeError matches with errors.Is.
var ErrTooLarge = errors.New("file too large")

// MaxRunFileBytes bounds a run config file (config.MaxFileBytes), read by
// config and by track (a run folder's config.yaml, which track sits below
// config to read): they are a few kilobytes, and a run folder may come
// from anywhere.
const MaxRunFileBytes = 4 << 20

// TooLargeError is ReadFileLimit's refusal of a file over its limit.
type TooLargeError struct {
	Path  string
	Size  int64 // -1 when the file grew while read and the read ran past Limit
	Limit int64
}

func (e *TooLargeError) Error() string {
	size := "more than " + FormatBytes(e.Limit)
	if e.Size >= 0 {
		size = FormatBytes(e.Size)
	}
	return fmt.Sprintf("%s is %s; ftune reads at most %s of such a file (it is not one, or it is corrupt)", e.Path, size, FormatBytes(e.Limit))
}

func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// ReadFileLimit reads a whole file that is parsed in memory (a model's
// config.json, tokenizer.json or chat template). These files arrive with
// downloaded models, so a corrupt or hostile one must fail with its name,
// never hang the process or exhaust memory: the file is opened with
// OpenRegular, which refuses a named pipe, a device or anything else that
// is not a regular file (NotRegularError) without blocking, and one larger
// than limit is refused before reading (TooLargeError). The read is bounded
// too, for a file that grows while read. Links are followed: a Hugging Face
// cache keeps model files as links to its blobs.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > limit {
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

// FormatBytes writes n in the largest binary unit that keeps it at least 1
// (512 B, 16.0 MiB, 1.5 GiB).
func FormatBytes(n int64) string {
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
