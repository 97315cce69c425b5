package subject

import (
	"fmt"
	"math"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// MixStrategy says how rows of several subjects are combined.
type MixStrategy int

const (
	// Concat: every row of subject 0, then of subject 1, ... (Total is
	// ignored).
	Concat MixStrategy = iota
	// Interleave: each next row is drawn from subject i with probability
	// weight_i / sum(weights).
	Interleave
	// Temperature: probability proportional to size_i^(1/T): T = 1 follows
	// the sizes, large T tends to uniform and so upsamples small subjects.
	Temperature
)

// MixOptions configure MixPlan and Mix.
type MixOptions struct {
	Strategy    MixStrategy
	Weights     []float64 // Interleave; nil: equal weights
	Temperature float64   // Temperature strategy; must be > 0
	// Total is the number of rows drawn (0: the sum of the sizes). A subject
	// drawn more often than it has rows starts over with a new shuffle.
	Total int
	Seed  uint64
}

// Ref points at row Index of subject Subject.
type Ref struct{ Subject, Index int }

// Probabilities returns the per-subject sampling probabilities MixPlan
// uses (nil for Concat). Empty subjects get 0.
func Probabilities(sizes []int, o MixOptions) ([]float64, error) {
	p := make([]float64, len(sizes))
	switch o.Strategy {
	case Concat:
		return nil, nil
	case Interleave:
		if o.Weights != nil && len(o.Weights) != len(sizes) {
			return nil, fmt.Errorf("mix: %d weights for %d subjects", len(o.Weights), len(sizes))
		}
		for i := range p {
			p[i] = 1
			if o.Weights != nil {
				if w := o.Weights[i]; w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
					return nil, fmt.Errorf("mix: weight %v of subject %d: expected a finite number >= 0", w, i)
				}
				p[i] = o.Weights[i]
			}
		}
	case Temperature:
		if !(o.Temperature > 0) {
			return nil, fmt.Errorf("mix: temperature %v must be > 0", o.Temperature)
		}
		for i, n := range sizes {
			p[i] = math.Pow(float64(n), 1/o.Temperature)
		}
	default:
		return nil, fmt.Errorf("mix: unknown strategy %d", o.Strategy)
	}
	sum := 0.0
	for i := range p {
		if sizes[i] == 0 {
			p[i] = 0
		}
		sum += p[i]
	}
	if sum == 0 {
		return nil, fmt.Errorf("mix: every subject is empty or has weight 0")
	}
	for i := range p {
		p[i] /= sum
	}
	return p, nil
}

// MixPlan decides which row of which subject comes next. Within a subject
// rows are taken in a seeded shuffled order, so no row repeats before all
// rows of that subject were used.
func MixPlan(sizes []int, o MixOptions) ([]Ref, error) {
	if o.Strategy == Concat {
		var out []Ref
		for s, n := range sizes {
			for i := range n {
				out = append(out, Ref{s, i})
			}
		}
		return out, nil
	}
	p, err := Probabilities(sizes, o)
	if err != nil {
		return nil, err
	}
	total := o.Total
	if total == 0 {
		for _, n := range sizes {
			total += n
		}
	}
	r := prep.NewRand(o.Seed)
	orders := make([][]int, len(sizes))
	next := make([]int, len(sizes))
	out := make([]Ref, 0, total)
	for range total {
		u, s := r.Float64(), len(p)-1
		for i, pi := range p {
			if u < pi {
				s = i
				break
			}
			u -= pi
		}
		for p[s] == 0 { // rounding put u past the last non-empty subject
			s--
		}
		if next[s] == len(orders[s]) {
			orders[s] = prep.Perm(sizes[s], r)
			next[s] = 0
		}
		out = append(out, Ref{s, orders[s][next[s]]})
		next[s]++
	}
	return out, nil
}

// Mix combines per-subject rows; rows[i] are subject i's. Every row out
// carries its subject id.
func Mix(rows [][]prep.Row, o MixOptions) ([]prep.Row, error) {
	sizes := make([]int, len(rows))
	for i, r := range rows {
		sizes[i] = len(r)
	}
	plan, err := MixPlan(sizes, o)
	if err != nil {
		return nil, err
	}
	out := make([]prep.Row, len(plan))
	for k, ref := range plan {
		out[k] = rows[ref.Subject][ref.Index]
		out[k].Subject = ref.Subject
	}
	return out, nil
}

// Rows builds the training rows of a split for all subjects: each subject
// is read, tokenised with its own preprocessor, laid out (packed rows never
// mix subjects, so adapters can be routed per row) and the subjects mixed.
// When o.Weights is nil, Interleave uses the subject.yaml weights.
func (m *Manager) Rows(split Split, fopts format.Options, prepFor PrepFor, ro prep.RowOptions, o MixOptions) ([]prep.Row, error) {
	per := make([][]prep.Row, len(m.Subjects))
	for _, s := range m.Subjects {
		if _, ok := s.Files[split]; !ok {
			continue
		}
		exs, _, err := s.Load(split, fopts)
		if err != nil {
			return nil, err
		}
		p, err := prepFor(s)
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", s.Name, err)
		}
		rows, _, err := p.Rows(exs, ro)
		if err != nil {
			return nil, fmt.Errorf("subject %s: %w", s.Name, err)
		}
		for i := range rows {
			rows[i].Subject = s.ID
		}
		per[s.ID] = rows
	}
	if o.Strategy == Interleave && o.Weights == nil {
		for _, s := range m.Subjects {
			o.Weights = append(o.Weights, s.WeightOrDefault())
		}
	}
	return Mix(per, o)
}
