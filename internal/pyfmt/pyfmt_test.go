package pyfmt

import (
	"math"
	"testing"
)

// TestJSONFloat: json.dumps's text of each float, as Python 3.11 printed
// it (python3 -c 'import json; print(json.dumps(x))').
func TestJSONFloat(t *testing.T) {
	cases := map[float64]string{
		0.0123:                 "0.0123",
		1e-05:                  "1e-05",
		0.0001:                 "0.0001",
		1:                      "1.0",
		-2.5:                   "-2.5",
		1e16:                   "1e+16",
		1e15:                   "1000000000000000.0",
		1234567.0:              "1234567.0",
		123456.789:             "123456.789",
		1e-07:                  "1e-07",
		2.5e300:                "2.5e+300",
		5e-324:                 "5e-324",
		math.Copysign(0, -1):   "-0.0",
		float64(float32(0.01)): "0.009999999776482582",
		math.Inf(1):            "Infinity",
		math.Inf(-1):           "-Infinity",
	}
	for f, want := range cases {
		if got := JSONFloat(f); got != want {
			t.Errorf("JSONFloat(%v) = %q, Python's json.dumps %q", f, got, want)
		}
	}
	if got := JSONFloat(math.NaN()); got != "NaN" {
		t.Errorf("JSONFloat(NaN) = %q", got)
	}
}
