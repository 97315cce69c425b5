package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LibraryEnv names the file to open instead of searching (a path to
// libcublasLt.so.*). When set and unusable, loading fails naming it: no
// search follows, so the file asked for is the file used or an error.
const LibraryEnv = "FTUNE_CUBLASLT_LIBRARY"

// ltNames are the sonames tried, newest first: cuBLASLt 13 (CUDA 13) and
// 12 (CUDA 12); both export the entry points ftune binds. A library needs
// a driver of its CUDA major version or newer, so under a CUDA 12 driver
// only .so.12 is tried (ltNamesFor).
var ltNames = []string{"libcublasLt.so.13", "libcublasLt.so.12"}

// ltNamesFor returns the sonames a driver supporting CUDA version driver
// (e.g. 12080) can run; 0 (unknown) keeps them all.
func ltNamesFor(driver int) []string {
	if driver > 0 && driver < 13000 {
		return ltNames[1:]
	}
	return ltNames
}

// ltSearchDirs are the folders searched, in order, after the system's
// loader (LD_LIBRARY_PATH, /etc/ld.so.cache) has been asked for each
// soname by name: the CUDA toolkit's usual homes, then the folders where
// pip's NVIDIA wheels (which PyTorch installs) keep the library under a
// Python's site-packages: nvidia/cu13/lib (CUDA 13 wheels) and
// nvidia/cublas/lib (CUDA 12 wheels). The Python prefixes are the active
// virtual environment ($VIRTUAL_ENV), conda ($CONDA_PREFIX, /opt/conda),
// the user's ~/.local and the system's /usr/local/lib and /usr/lib, any
// python3.* under them, site- or dist-packages. Nothing else is searched
// and no program is run to find it.
func ltSearchDirs() []string {
	dirs := []string{"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu"}
	var prefixes []string
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if v := os.Getenv(env); v != "" {
			prefixes = append(prefixes, filepath.Join(v, "lib"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		prefixes = append(prefixes, filepath.Join(home, ".local", "lib"))
	}
	prefixes = append(prefixes, "/opt/conda/lib", "/usr/local/lib", "/usr/lib")
	for _, p := range prefixes {
		for _, pkgs := range []string{"site-packages", "dist-packages"} {
			for _, sub := range []string{"nvidia/cu13/lib", "nvidia/cublas/lib"} {
				m, _ := filepath.Glob(filepath.Join(p, "python3*", pkgs, sub))
				dirs = append(dirs, m...)
			}
		}
	}
	return dirs
}

// ltCandidates lists what LoadBLASLt tries, in order: the override alone,
// or each soname by name (the system loader's search) and then in each
// search folder where the file exists.
func ltCandidates(override string, names, dirs []string, exists func(string) bool) []string {
	if override != "" {
		return []string{override}
	}
	var out []string
	out = append(out, names...)
	for _, d := range dirs {
		for _, n := range names {
			if p := filepath.Join(d, n); exists(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// LoadBLASLt opens cuBLASLt once per process and returns the file opened
// and cublasLtGetVersion (e.g. 130100 for 13.1.0). The error lists what was
// tried and says how to point ftune at the library.
func LoadBLASLt() (path string, version int, err error) {
	ltLib.once.Do(func() {
		ltLib.path, ltLib.version, ltLib.err = loadLt(os.Getenv(LibraryEnv), ltNamesFor(driverVer), ltSearchDirs())
	})
	return ltLib.path, ltLib.version, ltLib.err
}

// loadLt tries the candidates in order and binds the first that opens
// with every symbol.
func loadLt(override string, names, dirs []string) (string, int, error) {
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	var why []string
	for _, c := range ltCandidates(override, names, dirs, exists) {
		if err := bindLt(c); err != nil {
			why = append(why, err.Error())
			continue
		}
		return c, int(cublasLtGetVersion()), nil
	}
	if override != "" {
		return "", 0, fmt.Errorf("cublaslt: %s=%s cannot be used: %s", LibraryEnv, override, strings.Join(why, "; "))
	}
	return "", 0, fmt.Errorf("cublaslt: %s found neither by the system loader nor under %s (%s); install cuBLAS or set %s to the file",
		strings.Join(names, " or "), strings.Join(dirs, ", "), strings.Join(why, "; "), LibraryEnv)
}
