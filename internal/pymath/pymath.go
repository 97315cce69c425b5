// Package pymath holds arithmetic done as Python does it, where ftune must
// reach the numbers Hugging Face's Python code reaches.
package pymath

import "math"

// CeilFraction is math.ceil(n * fraction) in Python: transformers' warmup
// steps of a warmup_ratio (get_warmup_steps) and the decay steps of a
// ratio. The float product is rounded up as it is, so 0.07 of 100 is 8
// (7.000000000000001), as transformers warms up, not 7; 0 for n ≤ 0.
func CeilFraction(fraction float64, n int) int {
	if n <= 0 {
		return 0
	}
	return int(math.Ceil(float64(n) * fraction))
}
