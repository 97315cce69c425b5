//go:build !linux && !cudasim

package dist

import (
	"fmt"
	"runtime"
)

// loadNCCL: NCCL is opened on Linux only.
func loadNCCL() (*ncclLib, error) {
	return nil, fmt.Errorf("nccl: not supported on %s (ftune opens NCCL on Linux only)", runtime.GOOS)
}
