package testutil

import (
	"math"
	"os"
	"path/filepath"
	"sort"
)

// RelFrobenius returns ‖got−want‖₂ / max(‖want‖₂, tiny): the normalised
// error used for every parity tolerance (one number per tensor, robust to
// individual near-zero entries).
func RelFrobenius(got, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range got {
		d := got[i] - want[i]
		if math.IsNaN(d) {
			return math.NaN()
		}
		num += d * d
		den += want[i] * want[i]
	}
	return math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-30)
}

// F64 widens float32 values.
func F64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// Folders returns the subfolders of root that contain marker, followed by
// those under the folder named by the environment variable env (when set),
// sorted within each source.
func Folders(root, marker, env string) []string {
	var out []string
	list := func(dir string) {
		entries, _ := os.ReadDir(dir)
		var found []string
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if _, err := os.Stat(filepath.Join(p, marker)); err == nil && e.IsDir() {
				found = append(found, p)
			}
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	list(root)
	if extra := os.Getenv(env); extra != "" {
		list(extra)
	}
	return out
}
