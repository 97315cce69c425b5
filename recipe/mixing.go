package recipe

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/ftune/ftune/data/subject"
)

// mixOptions turns data.mixing into the subject mixer's options, seeded
// by data.seed:
//   - proportional: each subject in proportion to its size (times its
//     subject.yaml weight): with equal weights every row once per epoch;
//   - uniform: each subject equally often (times its subject.yaml weight),
//     small subjects repeated, large ones subsampled;
//   - weights: data.weights by subject name; every selected subject needs
//     one (0 leaves it out).
//
// The epoch keeps the total number of rows in each case.
//
// sizes are the subjects' row counts (nil for an early check of the keys).
func mixOptions(o Options, srcs []*source, sizes []int) (subject.MixOptions, error) {
	mo := subject.MixOptions{Strategy: subject.Interleave, Seed: o.DataSeed}
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.name
	}
	switch o.Mixing {
	case "", "proportional":
		equal := true
		for _, s := range srcs {
			equal = equal && s.weight == srcs[0].weight
		}
		if equal {
			// Concat: the loader shuffles every epoch, so the subjects
			// are mixed in exact proportion to their sizes.
			mo.Strategy = subject.Concat
			return mo, nil
		}
		// Interleave by size × weight.
		for i, s := range srcs {
			n := 1
			if sizes != nil {
				n = sizes[i]
			}
			mo.Weights = append(mo.Weights, float64(n)*s.weight)
		}
	case "uniform":
		for _, s := range srcs {
			mo.Weights = append(mo.Weights, s.weight)
		}
	case "weights":
		if len(o.MixWeights) == 0 {
			return mo, fmt.Errorf("data.weights: mixing is weights but no weight is set (want one per subject: %s)", strings.Join(names, ", "))
		}
		for _, k := range slices.Sorted(maps.Keys(o.MixWeights)) {
			w := o.MixWeights[k]
			if !slices.Contains(names, k) {
				return mo, fmt.Errorf("data.weights.%s: %q is not a selected subject (have: %s)", k, k, strings.Join(names, ", "))
			}
			if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
				return mo, fmt.Errorf("data.weights.%s: weight %v: expected a finite number >= 0", k, w)
			}
		}
		sum := 0.0
		for _, n := range names {
			w, ok := o.MixWeights[n]
			if !ok {
				return mo, fmt.Errorf("data.weights: no weight for subject %q (set one per subject: %s; 0 leaves a subject out)", n, strings.Join(names, ", "))
			}
			mo.Weights = append(mo.Weights, w)
			sum += w
		}
		if sum == 0 {
			return mo, fmt.Errorf("data.weights: every weight is 0: nothing to train on")
		}
	default:
		return mo, fmt.Errorf("data.mixing: %q (want proportional, uniform or weights)", o.Mixing)
	}
	return mo, nil
}
