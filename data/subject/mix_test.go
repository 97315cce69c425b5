package subject

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

func TestMixConcat(t *testing.T) {
	plan, err := MixPlan([]int{2, 0, 3}, MixOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{{0, 0}, {0, 1}, {2, 0}, {2, 1}, {2, 2}}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("plan %v, want %v", plan, want)
	}
}

func TestMixFrequencies(t *testing.T) {
	sizes := []int{1000, 100, 10}
	const total = 60_000
	for _, tc := range []struct {
		name string
		o    MixOptions
		want []float64
	}{
		{"interleave equal", MixOptions{Strategy: Interleave}, []float64{1. / 3, 1. / 3, 1. / 3}},
		{"interleave weights", MixOptions{Strategy: Interleave, Weights: []float64{1, 2, 1}}, []float64{0.25, 0.5, 0.25}},
		{"interleave zero weight", MixOptions{Strategy: Interleave, Weights: []float64{0, 1, 1}}, []float64{0, 0.5, 0.5}},
		{"temperature 1 follows sizes", MixOptions{Strategy: Temperature, Temperature: 1}, []float64{1000. / 1110, 100. / 1110, 10. / 1110}},
		// sqrt sizes: 31.62, 10, 3.162 over 44.78; at T=100, n^0.01: 1.072, 1.047, 1.023.
		{"temperature 2", MixOptions{Strategy: Temperature, Temperature: 2}, []float64{0.7061, 0.2233, 0.0706}},
		{"temperature 100 tends to uniform", MixOptions{Strategy: Temperature, Temperature: 100}, []float64{0.3410, 0.3333, 0.3257}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Total, tc.o.Seed = total, 11
			p, err := Probabilities(sizes, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			for i := range p {
				if math.Abs(p[i]-tc.want[i]) > 1e-3 {
					t.Errorf("probabilities %v, want %v", p, tc.want)
				}
			}
			plan, err := MixPlan(sizes, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan) != total {
				t.Fatalf("%d refs", len(plan))
			}
			counts := make([]int, len(sizes))
			used := make([]map[int]int, len(sizes))
			for _, r := range plan {
				counts[r.Subject]++
				if used[r.Subject] == nil {
					used[r.Subject] = map[int]int{}
				}
				used[r.Subject][r.Index]++
			}
			for i, c := range counts {
				// Binomial sd is at most sqrt(total/4) = 122; allow 5 sd.
				if math.Abs(float64(c)-tc.want[i]*total) > 5*122 {
					t.Errorf("subject %d drawn %d times, want about %.0f", i, c, tc.want[i]*total)
				}
				// Epochs: every row is used k or k+1 times.
				if c > 0 {
					lo, hi := c/sizes[i], (c+sizes[i]-1)/sizes[i]
					for _, u := range used[i] {
						if u < lo || u > hi {
							t.Fatalf("subject %d: a row used %d times, want %d..%d", i, u, lo, hi)
						}
					}
				}
			}
			again, _ := MixPlan(sizes, tc.o)
			if !reflect.DeepEqual(plan, again) {
				t.Error("same seed, different plan")
			}
		})
	}
}

func TestMixErrors(t *testing.T) {
	for _, tc := range []struct {
		sizes []int
		o     MixOptions
		want  string
	}{
		{[]int{1, 2}, MixOptions{Strategy: Interleave, Weights: []float64{1}}, "1 weights for 2 subjects"},
		{[]int{1, 2}, MixOptions{Strategy: Interleave, Weights: []float64{1, -1}}, "weight -1"},
		{[]int{1, 2}, MixOptions{Strategy: Temperature}, "temperature 0"},
		{[]int{0, 0}, MixOptions{Strategy: Interleave}, "every subject is empty"},
		{[]int{1}, MixOptions{Strategy: 9}, "unknown strategy"},
	} {
		if _, err := MixPlan(tc.sizes, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestManagerRowsCarrySubjects(t *testing.T) {
	m, err := Open(writeTree(t, testTree))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := m.Rows(Train, format.Options{}, bytePrep(prep.Options{}), prep.RowOptions{Pack: true, SeqLen: 256}, MixOptions{Strategy: Interleave, Total: 300, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]int{}
	for _, r := range rows {
		counts[r.Subject]++
		if r.Docs == 0 {
			t.Fatal("empty row")
		}
	}
	// history has no train split; geo's subject.yaml weight 2, chem's 1.
	if len(rows) != 300 || counts[2] != 0 || counts[1] < 150 || counts[0] < 60 {
		t.Errorf("%d rows, per subject %v", len(rows), counts)
	}
}
