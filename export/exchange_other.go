//go:build !linux && !darwin

package export

import "errors"

// exchange has no atomic form here; install falls back to two renames.
func exchange(a, b string) error { return errors.ErrUnsupported }
