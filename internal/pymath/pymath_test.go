package pymath

import "testing"

// TestCeilFraction: Python's math.ceil(n * fraction), float rounding
// included (python3 -c 'import math; print(math.ceil(100*0.07))' is 8).
func TestCeilFraction(t *testing.T) {
	for _, c := range []struct {
		fraction float64
		n, want  int
	}{{0.07, 100, 8}, {0.1, 100, 10}, {0.14, 50, 8}, {0.07, 200, 15}, {0.5, 3, 2}, {0, 100, 0}, {0.1, 0, 0}, {0.1, -5, 0}} {
		if got := CeilFraction(c.fraction, c.n); got != c.want {
			t.Errorf("CeilFraction(%v, %d) = %d, want %d", c.fraction, c.n, got, c.want)
		}
	}
}
