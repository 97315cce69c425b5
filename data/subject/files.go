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
// for validation at run time. The counts are SplitReport's.
type FileReport struct {
	File string
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
	// Errors are the subject's own: none of its examples fits.
	Errors []string
}

// FilesReport is the validation of the file subjects of a run's data.
type FilesReport struct {
	Subjects []*FileSubjectReport
}

// ValidateFiles reads the data files of the file subject name, in order,
// as a run reads them (opts: its format and shape; Skip counts bad records
// instead of stopping at the first), and reports per file the examples,
// tokens, truncated and dropped examples (when p is not nil) and
// duplicates: examples met earlier in the subject's files, which the
// held-out share may separate from their twin. A file that cannot be read
// is recorded and does not stop the others. Reading stops when ctx is
// done (the report is then partial).
func ValidateFiles(ctx context.Context, name string, files []string, opts format.Options, p *prep.Preprocessor) *FileSubjectReport {
	sr := &FileSubjectReport{Name: name}
	seen := map[[32]byte]bool{}
	var all prep.Stats
	empty := 0 // files without an example
	for _, f := range files {
		fr := &FileReport{File: f}
		fr.Present = true
		sr.Files = append(sr.Files, fr)
		exs, rep, err := format.ReadAllContext(ctx, f, opts)
		fr.Skipped, fr.SkipReasons = rep.Skipped, rep.SkipErrors
		if errors.Is(err, format.ErrEmptyDataset) && len(files) > 1 {
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
		docs, st, err := p.TokenizeAll(exs)
		if err != nil {
			fr.Errors = append(fr.Errors, err.Error())
			continue
		}
		fr.Tokens, fr.LabelTokens = st.Tokens, st.LabelTokens
		fr.Truncated, fr.Dropped, fr.DroppedNoLabel = st.Truncated, st.Dropped, st.DroppedNoLabel
		_, fr.Split, _ = prep.SplitLong(docs, p.Opts.MaxLen)
		all.Examples += st.Examples
		all.Kept += st.Kept
		all.Dropped += st.Dropped
		all.DroppedNoLabel += st.DroppedNoLabel
	}
	if empty == len(files) && empty > 0 {
		sr.Errors = append(sr.Errors, fmt.Sprintf("no example in any of its %d files: a run refuses it", empty))
	}
	if p != nil && empty < len(files) {
		// A run refuses a subject none of whose examples fits.
		if err := all.NoneKeptError("subject "+name, p.Opts.MaxLen); err != nil {
			sr.Errors = append(sr.Errors, err.Error())
		}
	}
	return sr
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
			fmt.Fprintf(&b, "%-16s %8d %8d %9d %9d %6d %6d %6d %5d  %s\n", s.Name, f.Examples, f.Skipped,
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
	}
	return b.String()
}
