package report

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// The charts' tick markers. gonum's DefaultTicks places ticks well but
// labels them with a precision taken from the magnitude of the tick
// spacing alone, which on a narrow loss range names values the ticks are
// not at, or repeats: ticks at 2.32, 2.36, 2.40, 2.44 read "2.3", "2.4",
// "2.4", "2.4", and ticks at 4.80, 4.88, 4.96 read "4.8", "4.9", "5".
// Both markers keep DefaultTicks' positions (valueTicks) or their
// integers (stepTicks) and write each label from its tick's value.

// valueTicks is DefaultTicks with every label the tick's value: all
// labels of an axis share the fewest decimals that make each one equal
// its tick (to a millionth of the tick spacing, far below what a chart
// shows) and tell the ticks apart.
type valueTicks struct{}

func (valueTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	labelValues(ticks, hi-lo)
	return ticks
}

// stepTicks marks the step axis: a training step is a whole number, so
// labelled ticks fall on whole steps only. DefaultTicks puts them at 0,
// 2.5 and 5 on a run of five steps ("0.00", "2.50", "5.00") and at 0.5
// on a run of one; there the spacing is taken down to a whole 1, 2 or 5
// times a power of ten.
type stepTicks struct{}

func (stepTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	whole := true
	var majors []float64
	for _, t := range ticks {
		if t.Label != "" {
			majors = append(majors, t.Value)
			whole = whole && math.Abs(t.Value-math.Round(t.Value)) <= 1e-9*max(1, math.Abs(t.Value))
		}
	}
	if !whole {
		spacing := 1.0
		if len(majors) > 1 {
			spacing = max(wholeSpacing(majors[1]-majors[0]), 1)
		}
		var steps []plot.Tick
		for v := math.Ceil(lo/spacing) * spacing; v <= hi; v += spacing {
			steps = append(steps, plot.Tick{Value: v, Label: "-"}) // labelled below
		}
		if len(steps) > 0 {
			ticks = steps
		}
	}
	labelValues(ticks, hi-lo)
	return ticks
}

// wholeSpacing is the largest 1, 2 or 5 times a power of ten that is at
// most d (d > 0).
func wholeSpacing(d float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(d)))
	for _, m := range []float64{5, 2, 1} {
		if m*p <= d {
			return m * p
		}
	}
	return p
}

// labelValues rewrites the labels of the labelled ticks (minor ticks
// have none) from their values. Plain decimals are used unless the values
// are large (a million or more) or small (all under 0.001 in size), where
// the exponent form is shorter (zero is "0" there). span is the axis
// range, the tolerance's scale when fewer than two ticks are labelled.
func labelValues(ticks []plot.Tick, span float64) {
	var idx []int
	for i, t := range ticks {
		if t.Label != "" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	// A label equals its tick when it is within a millionth of the
	// smallest spacing: the ticks' own float error (2.4000000000000004)
	// passes, a rounding to a coarser digit does not.
	gap := math.Inf(1)
	for k := 1; k < len(idx); k++ {
		if d := math.Abs(ticks[idx[k]].Value - ticks[idx[k-1]].Value); d > 0 {
			gap = min(gap, d)
		}
	}
	if math.IsInf(gap, 1) {
		gap = span
	}
	largest := 0.0
	for _, i := range idx {
		largest = max(largest, math.Abs(ticks[i].Value))
	}
	if !(gap > 0) || math.IsInf(gap, 0) || math.IsNaN(largest) || math.IsInf(largest, 0) {
		for _, i := range idx {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', -1, 64)
		}
		return
	}
	tol := gap * 1e-6
	format := byte('f')
	if largest >= 1e6 || largest < 1e-3 {
		format = 'e'
	}
	label := func(v float64, prec int) string {
		if math.Abs(v) <= tol {
			if format == 'e' {
				return "0" // not "0.0e+00"
			}
			v = 0 // not "-0.00"
		}
		return strconv.FormatFloat(v, format, prec, 64)
	}
	labels := make([]string, len(idx))
	for prec := 0; prec <= 17; prec++ {
		ok := true
		seen := make(map[string]bool, len(idx))
		for k, i := range idx {
			l := label(ticks[i].Value, prec)
			back, err := strconv.ParseFloat(l, 64)
			if err != nil || math.Abs(back-ticks[i].Value) > tol || seen[l] {
				ok = false
				break
			}
			seen[l], labels[k] = true, l
		}
		if ok {
			for k, i := range idx {
				ticks[i].Label = labels[k]
			}
			return
		}
	}
	// Not reached for finite ticks (17 digits are exact); the shortest
	// exact form otherwise.
	for _, i := range idx {
		ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', -1, 64)
	}
}
