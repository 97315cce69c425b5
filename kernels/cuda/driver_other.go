//go:build !linux && !cudasim

package cuda

import (
	"fmt"
	"runtime"
)

// bindDriver: ftune drives NVIDIA GPUs on Linux only (the driver library is
// loaded with purego's dlopen); elsewhere CUDA reports itself unavailable.
func bindDriver([]symbol) error {
	return fmt.Errorf("cuda: not supported on %s", runtime.GOOS)
}
