package report

import (
	"math"
	"slices"
	"strconv"
	"testing"

	"gonum.org/v1/plot"

	"github.com/ftune/ftune/track"
)

// labelled is the labelled ticks of an axis's marker over its range.
func labelled(a plot.Axis) []plot.Tick {
	var out []plot.Tick
	for _, t := range a.Tick.Marker.Ticks(a.Min, a.Max) {
		if t.Label != "" {
			out = append(out, t)
		}
	}
	return out
}

// checkLabels: every label parses back to its tick's value (to a
// millionth of the spacing), and no two labels are the same.
func checkLabels(t *testing.T, what string, ticks []plot.Tick) {
	t.Helper()
	if len(ticks) < 2 {
		t.Errorf("%s: %d labelled ticks, want 2 or more: %v", what, len(ticks), ticks)
		return
	}
	gap := math.Inf(1)
	for i := 1; i < len(ticks); i++ {
		gap = min(gap, ticks[i].Value-ticks[i-1].Value)
	}
	seen := map[string]bool{}
	for _, tk := range ticks {
		v, err := strconv.ParseFloat(tk.Label, 64)
		if err != nil || math.Abs(v-tk.Value) > gap*1e-6 {
			t.Errorf("%s: tick at %v is labelled %q", what, tk.Value, tk.Label)
		}
		if seen[tk.Label] {
			t.Errorf("%s: label %q repeats: %v", what, tk.Label, ticks)
		}
		seen[tk.Label] = true
	}
}

func labels(ticks []plot.Tick) []string {
	var out []string
	for _, t := range ticks {
		out = append(out, t.Label)
	}
	return out
}

// TestChartTickLabelsAreTheirValues: the loss axis of a chart labels each
// tick with its value, however narrow, tiny or large the range (gonum's
// labels read "2.3", "2.4", "2.4", "2.4" for ticks at 2.32 … 2.44), and
// the step axis labels whole steps only (it had "0.00", "2.50", "5.00"
// for a five-step run).
func TestChartTickLabelsAreTheirValues(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lo, hi   float64
		steps    int
		want     []string // the loss axis's labels, where pinned
		wantStep []string // the step axis's labels, where pinned
	}{
		{"narrow", 4.83, 4.95, 5, []string{"4.85", "4.90", "4.95"}, []string{"0", "2", "4"}},
		{"narrow2", 2.31, 2.44, 300, []string{"2.32", "2.36", "2.40", "2.44"}, []string{"0", "100", "200", "300"}},
		{"wide", 0.5, 9.7, 80, nil, nil},
		{"tiny", 0.0012, 0.0015, 30, nil, nil},
		{"tiny-narrow", 0.00121, 0.00124, 1, nil, []string{"0", "1"}},
		{"large", 10, 12, 12, nil, nil},
		{"huge", 2.5e6, 2.6e6, 7, nil, nil},
		{"flat", 3.9, 4.0, 2, []string{"3.90", "3.95", "4.00"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A curve from step 1 to steps whose loss spans [lo, hi].
			var s []track.Point
			for i := 1; i <= tc.steps; i++ {
				f := float64(i-1) / float64(max(tc.steps-1, 1))
				s = append(s, track.Point{Step: i, Value: tc.hi - f*(tc.hi-tc.lo)})
			}
			if tc.steps == 1 {
				s = append(s, track.Point{Step: 1, Value: tc.lo})
			}
			p, err := chart("Loss", "loss", []string{"train"}, []curve{{name: "r", series: [][]track.Point{s}}})
			if err != nil {
				t.Fatal(err)
			}
			y, x := labelled(p.Y), labelled(p.X)
			checkLabels(t, "loss axis", y)
			checkLabels(t, "step axis", x)
			if tc.want != nil && !slices.Equal(labels(y), tc.want) {
				t.Errorf("loss axis %v..%v: labels %q, want %q", p.Y.Min, p.Y.Max, labels(y), tc.want)
			}
			if tc.wantStep != nil && !slices.Equal(labels(x), tc.wantStep) {
				t.Errorf("step axis %v..%v: labels %q, want %q", p.X.Min, p.X.Max, labels(x), tc.wantStep)
			}
			for _, tk := range x {
				if tk.Value != math.Round(tk.Value) {
					t.Errorf("step axis: a labelled tick at step %v", tk.Value)
				}
			}
		})
	}
}

// TestValueTicksRanges: the marker alone over ranges gonum mislabels or
// that need the exponent form.
func TestValueTicksRanges(t *testing.T) {
	for _, r := range [][2]float64{
		{2.31, 2.44}, {4.83, 4.95}, {4.8, 4.97}, {0.0012, 0.0015}, {10, 12}, {0, 1},
		{0, 2e-4}, {0, 1.5e-5}, {1e-7, 3e-7}, {99990, 100010}, {1e6, 1e6 + 3}, {-0.3, 0.2}, {3.9, 4.0},
		{1.0001, 1.0004},
	} {
		checkLabels(t, strconv.FormatFloat(r[0], 'g', -1, 64)+".."+strconv.FormatFloat(r[1], 'g', -1, 64),
			slices.DeleteFunc(valueTicks{}.Ticks(r[0], r[1]), func(tk plot.Tick) bool { return tk.Label == "" }))
	}
	for _, r := range [][2]float64{{0, 1}, {0, 2}, {0, 3}, {0, 5}, {0, 7}, {0, 12}, {0, 25}, {0, 80}, {0, 300}, {0, 1e5}} {
		ticks := slices.DeleteFunc(stepTicks{}.Ticks(r[0], r[1]), func(tk plot.Tick) bool { return tk.Label == "" })
		checkLabels(t, "steps 0.."+strconv.FormatFloat(r[1], 'g', -1, 64), ticks)
		for _, tk := range ticks {
			if tk.Value != math.Round(tk.Value) {
				t.Errorf("steps 0..%v: labelled tick at %v", r[1], tk.Value)
			}
		}
	}
}
