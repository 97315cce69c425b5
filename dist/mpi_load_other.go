//go:build !linux

package dist

import (
	"fmt"
	"runtime"
)

// loadMPI: ftune opens MPI with purego's dlopen on Linux only; elsewhere a
// job of more than one worker is refused (Single still runs).
func loadMPI([]string) (*mpiLib, error) {
	return nil, fmt.Errorf("mpi: not supported on %s (ftune opens MPI on Linux only)", runtime.GOOS)
}
