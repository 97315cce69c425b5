package subject

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// countTokens tokenizes exs as a run does and counts what r reports of
// them: tokens, learnt tokens, truncated, dropped and split examples.
// Each document is counted and let go as it is tokenised: validating a
// corpus held all its tokens at once (8 bytes a token), for counts.
func (r *SplitReport) countTokens(p *prep.Preprocessor, exs []format.Example) (prep.Stats, error) {
	split := 0
	st, err := p.TokenizeEach(exs, func(d prep.Tokenized) {
		if d.Cut(p.Opts.MaxLen) { // as the run's prep.SplitLong cuts it
			split++
		}
	})
	if err != nil {
		return st, err
	}
	r.Tokens, r.LabelTokens = st.Tokens, st.LabelTokens
	r.Truncated, r.Dropped, r.DroppedNoLabel = st.Truncated, st.Dropped, st.DroppedNoLabel
	r.Split = split
	return st, nil
}

// SplitReport counts one split of one subject.
type SplitReport struct {
	Present  bool
	Examples int // examples read
	Skipped  int // bad records skipped (format.Options.Skip)
	// Token counts, when a preprocessor was given.
	Tokens, LabelTokens                int
	Truncated, Dropped, DroppedNoLabel int
	// Split counts the plain-text examples longer than the row that a
	// run cuts into pieces (prep.Split), each trained on.
	Split int
	// Duplicates within the split (exact, after whitespace and case
	// normalisation).
	Duplicates int
}

// Overlap is an example found in two splits of a subject: a test example
// also trained on makes evaluation meaningless.
type Overlap struct {
	A, B             Split
	SourceA, SourceB string
}

// SubjectReport is the validation of one subject.
type SubjectReport struct {
	Name     string
	ID       int
	Splits   map[Split]*SplitReport
	Overlaps []Overlap // across splits, all of them
	Errors   []string  // files that could not be read
}

// Report is the validation report of a data root.
type Report struct {
	Subjects []*SubjectReport
}

// PrepFor gives the preprocessor of a subject (its template may differ).
type PrepFor func(s *Subject) (*prep.Preprocessor, error)

// Validate reads every split of every subject and reports counts, the
// truncated and dropped examples (when prepFor is not nil), and duplicates
// within and across splits. A file that cannot be read is recorded in the
// report and does not stop the others; Validate returns an error only when
// prepFor fails.
func (m *Manager) Validate(opts format.Options, prepFor PrepFor) (*Report, error) {
	rep := &Report{}
	for _, s := range m.Subjects {
		sr := &SubjectReport{Name: s.Name, ID: s.ID, Splits: map[Split]*SplitReport{}}
		rep.Subjects = append(rep.Subjects, sr)
		var p *prep.Preprocessor
		if prepFor != nil {
			var err error
			if p, err = prepFor(s); err != nil {
				return nil, fmt.Errorf("subject %s: %w", s.Name, err)
			}
		}
		type seen struct {
			split  Split
			source string
		}
		first := map[[32]byte]seen{}
		for _, split := range Splits {
			r := &SplitReport{}
			sr.Splits[split] = r
			exs, frep, err := s.Load(split, opts)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			r.Present = true
			r.Skipped = frep.Skipped
			if err != nil {
				sr.Errors = append(sr.Errors, err.Error())
				continue
			}
			r.Examples = len(exs)
			for _, ex := range exs {
				k := exampleKey(ex)
				if f, ok := first[k]; ok {
					if f.split == split {
						r.Duplicates++
					} else {
						sr.Overlaps = append(sr.Overlaps, Overlap{A: f.split, B: split, SourceA: f.source, SourceB: ex.Source})
					}
					continue
				}
				first[k] = seen{split, ex.Source}
			}
			if p != nil {
				if _, err := r.countTokens(p, exs); err != nil {
					sr.Errors = append(sr.Errors, err.Error())
					continue
				}
			}
		}
	}
	return rep, nil
}

// exampleKey identifies an example up to case and whitespace.
func exampleKey(ex format.Example) [32]byte {
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	var b strings.Builder
	b.WriteString(norm(ex.Text))
	for _, m := range ex.Messages {
		b.WriteString("\x00" + m.Role + "\x00" + norm(m.Content))
	}
	return sha256.Sum256([]byte(b.String()))
}

// OK reports whether the data is usable as is: no unreadable file, no
// example shared between splits.
func (r *Report) OK() bool {
	for _, s := range r.Subjects {
		if len(s.Errors) > 0 || len(s.Overlaps) > 0 {
			return false
		}
	}
	return true
}

// String formats the report as a table followed by problems.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %-5s %8s %8s %9s %9s %6s %6s %6s %5s\n", "subject", "split", "examples", "skipped", "tokens", "learnt", "trunc", "cut", "drop", "dups")
	for _, s := range r.Subjects {
		for _, split := range Splits {
			sp := s.Splits[split]
			if sp == nil || !sp.Present {
				continue
			}
			fmt.Fprintf(&b, "%-16s %-5s %8d %8d %9d %9d %6d %6d %6d %5d\n", s.Name, split, sp.Examples, sp.Skipped,
				sp.Tokens, sp.LabelTokens, sp.Truncated, sp.Split, sp.Dropped+sp.DroppedNoLabel, sp.Duplicates)
		}
	}
	for _, s := range r.Subjects {
		counts := map[string]int{}
		for _, o := range s.Overlaps {
			counts[string(o.A)+"/"+string(o.B)]++
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %d examples in both %s\n", s.Name, counts[k], k)
		}
		for i, o := range s.Overlaps {
			if i == 3 {
				fmt.Fprintf(&b, "  ...\n")
				break
			}
			fmt.Fprintf(&b, "  %s = %s\n", o.SourceA, o.SourceB)
		}
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "%s: error: %s\n", s.Name, e)
		}
	}
	return b.String()
}
