// Package pyfmt writes values as Python writes them, where files and
// prompts must hold Python's exact text: a float as json.dumps writes it.
package pyfmt

import (
	"math"
	"strconv"
	"strings"
)

// JSONFloat is a float as Python's json.dumps writes it: repr's shortest
// digits that read back the same, positional for exponents from -4 to 15
// (with ".0" for whole numbers), else d.ddde±XX with at least two exponent
// digits; NaN, Infinity and -Infinity for the non-finite (repr spells
// those nan, inf and -inf).
func JSONFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // Go writes the exponent as Python does: e-05, e+16
	exp, _ := strconv.Atoi(e[strings.IndexByte(e, 'e')+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
