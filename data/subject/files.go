package subject

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ftune/ftune/data/format"
	"github.com/ftune/ftune/data/prep"
)

// FileReport counts one data file of a file subject: a data file of a run's
// data root, or the data files a run is given (recipe.DataInputs), whose
// examples are the subject's training examples, a share of them held out
// for validation at run time; or a file of a dataset folder's validation
// or test split (Part). The counts are SplitReport's.
type FileReport struct {
	File string
	// Part is the split the file is read as: Train (or "") for data
	// files, Val or Test for a dataset folder's other splits.
	Part Split
	SplitReport
	// Errors: the record the read stopped at (file:line), or a tokenising
	// error; SkipReasons: the first skipped records' (file:line); Notes:
	// what a run does otherwise than read it (a file without an example,
	// among several, left out).
	Errors, SkipReasons, Notes []string
}

// FileSubjectReport is the validation of one file subject.
type FileSubjectReport struct {
	Name  string
	Files []*FileReport
	// Errors are the subject's own: none of its examples fits; Notes say
	// what a run reads a split for.
	Errors, Notes []string
}

// FilesReport is the validation of the file subjects of a run's data.
type FilesReport struct {
	Subjects []*FileSubjectReport
}

// ValidateSplits reads the data files of the file subject name, split by
// split (a plain --data subject's are all Train; a Hugging Face dataset
// folder's also Val and Test: recipe.DataInput's Files, Val and Test), in
// the order of Splits and each as a run reads it (opts: its format and
// shape; Skip counts bad records instead of stopping at the first), and
// reports per file the examples, tokens, truncated, dropped and split
// examples (when p is not nil) and duplicates: examples met earlier in
// any split (which the held-out share may separate from their twin; a
// validation example also trained on, which a run warns of; a test
// question trained on). A file that cannot be read is recorded and does
// not stop the others. A run refuses a subject none of whose training
// examples fits; a split none of whose files holds an example, as it
// refuses the subject's. Reading stops when ctx is done (the report is
// then partial).
func ValidateSplits(ctx context.Context, name string, files map[Split][]string, opts format.Options, p *prep.Preprocessor) *FileSubjectReport {
	sr := &FileSubjectReport{Name: name}
	seen := map[[32]byte]bool{}
	for _, split := range Splits {
		fs := files[split]
		if len(fs) == 0 {
			continue
		}
		var all prep.Stats
		empty := 0 // files without an example
		for _, f := range fs {
			fr := &FileReport{File: f, Part: split}
			fr.Present = true
			sr.Files = append(sr.Files, fr)
			exs, rep, err := format.ReadAllContext(ctx, f, opts)
			fr.Skipped, fr.SkipReasons = rep.Skipped, rep.SkipErrors
			for _, n := range rep.Notes { // how it was read, as a run says
				fr.Notes = append(fr.Notes, f+": "+n)
			}
			if errors.Is(err, format.ErrEmptyDataset) && len(fs) > 1 {
				// A run leaves out a file without an example among several
				// (recipe's readFiles): a note here too, not an error.
				fr.Notes = append(fr.Notes, fmt.Sprintf("%s: no example: a run leaves it out", f))
				empty++
				continue
			}
			if err != nil {
				fr.Errors = append(fr.Errors, err.Error())
				continue
			}
			fr.Examples = len(exs)
			for _, ex := range exs {
				k := exampleKey(ex)
				if seen[k] {
					fr.Duplicates++
				}
				seen[k] = true
			}
			if p == nil {
				continue
			}
			st, err := fr.countTokens(p, exs)
			if err != nil {
				fr.Errors = append(fr.Errors, err.Error())
				continue
			}
			all.Examples += st.Examples
			all.Kept += st.Kept
			all.Dropped += st.Dropped
			all.DroppedNoLabel += st.DroppedNoLabel
		}
		if empty == len(fs) && empty > 0 {
			what := fmt.Sprintf("its %d files", empty)
			if split != Train {
				what = fmt.Sprintf("the %d files of its %s split", empty, splitWords[split])
			}
			sr.Errors = append(sr.Errors, fmt.Sprintf("no example in any of %s: a run refuses it", what))
		}
		if split == Train && p != nil && empty < len(fs) {
			// A run refuses a subject none of whose examples fits.
			if err := all.NoneKeptError("subject "+name, p.Opts.MaxLen); err != nil {
				sr.Errors = append(sr.Errors, err.Error())
			}
		}
	}
	return sr
}

// splitWords name the splits as datasets do.
var splitWords = map[Split]string{Train: "train", Val: "validation", Test: "test"}

// label is the report's subject column for a file: the subject, and the
// split of a file that is not a training file.
func (r *FileReport) label(subject string) string {
	if r.Part == "" || r.Part == Train {
		return subject
	}
	return subject + "/" + string(r.Part)
}

// OK reports whether a run would read the files as they are: every file
// readable and tokenised, some example of every subject kept.
func (r *FilesReport) OK() bool {
	for _, s := range r.Subjects {
		if len(s.Errors) > 0 {
			return false
		}
		for _, f := range s.Files {
			if len(f.Errors) > 0 {
				return false
			}
		}
	}
	return true
}

// String formats the report as a table, one row per file, followed by
// problems, each naming its file and line.
func (r *FilesReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %8s %8s %9s %9s %6s %6s %6s %5s  %s\n", "subject", "examples", "skipped", "tokens", "learnt", "trunc", "cut", "drop", "dups", "file")
	for _, s := range r.Subjects {
		for _, f := range s.Files {
			fmt.Fprintf(&b, "%-16s %8d %8d %9d %9d %6d %6d %6d %5d  %s\n", f.label(s.Name), f.Examples, f.Skipped,
				f.Tokens, f.LabelTokens, f.Truncated, f.Split, f.Dropped+f.DroppedNoLabel, f.Duplicates, f.File)
		}
	}
	for _, s := range r.Subjects {
		for _, f := range s.Files {
			for _, e := range f.Errors {
				fmt.Fprintf(&b, "%s: error: %s\n", s.Name, e)
			}
			for _, e := range f.SkipReasons {
				fmt.Fprintf(&b, "%s: skipped: %s\n", s.Name, e)
			}
			for _, e := range f.Notes {
				fmt.Fprintf(&b, "%s: note: %s\n", s.Name, e)
			}
			if n := f.Skipped - len(f.SkipReasons); n > 0 {
				fmt.Fprintf(&b, "%s: skipped: %d more in %s\n", s.Name, n, f.File)
			}
		}
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "%s: error: %s\n", s.Name, e)
		}
		for _, e := range s.Notes {
			fmt.Fprintf(&b, "%s: note: %s\n", s.Name, e)
		}
	}
	return b.String()
}
