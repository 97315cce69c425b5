//go:build linux && !cudasim

package cuda

import (
	"fmt"

	"github.com/ebitengine/purego"
)

// bindLt opens one candidate library and binds every cuBLASLt symbol; a
// missing file or symbol is an error (RegisterLibFunc would panic).
func bindLt(path string) error {
	lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	for _, s := range ltSymbols() {
		if _, err := purego.Dlsym(lib, s.name); err != nil {
			purego.Dlclose(lib)
			return fmt.Errorf("%s: symbol %s missing", path, s.name)
		}
	}
	for _, s := range ltSymbols() {
		purego.RegisterLibFunc(s.fn, lib, s.name)
	}
	if _, err := purego.Dlsym(lib, "cublasLtGetStatusString"); err == nil {
		purego.RegisterLibFunc(&cublasLtGetStatusString, lib, "cublasLtGetStatusString")
	}
	return nil
}
