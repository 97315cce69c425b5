//go:build !linux && !cudasim

package cuda

import (
	"fmt"
	"runtime"
)

// bindLt: cuBLASLt is opened on Linux only, as the driver is.
func bindLt(path string) error {
	return fmt.Errorf("%s: not supported on %s", path, runtime.GOOS)
}
