//go:build !linux

package train

import "errors"

// exchangeDirs has no atomic form here: replaceDir renames the old folder
// aside instead.
func exchangeDirs(a, b string) error { return errors.New("no atomic exchange") }
