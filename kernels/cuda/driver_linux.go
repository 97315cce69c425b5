//go:build linux && !cudasim

package cuda

import (
	"fmt"

	"github.com/ebitengine/purego"
)

// bindDriver opens libcuda.so.1 and binds every symbol.
func bindDriver(syms []symbol) error {
	lib, err := purego.Dlopen("libcuda.so.1", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return fmt.Errorf("cuda: no NVIDIA driver: %v", err)
	}
	for _, s := range syms {
		// Dlsym first: RegisterLibFunc panics on a missing symbol, and an
		// old driver must give an error, not a crash.
		if _, err := purego.Dlsym(lib, s.name); err != nil {
			return fmt.Errorf("cuda: driver too old: symbol %s missing (need CUDA 12.0 or newer)", s.name)
		}
		purego.RegisterLibFunc(s.fn, lib, s.name)
	}
	return nil
}
