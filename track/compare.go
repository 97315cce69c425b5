package track

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
)

// RunComparison is a Comparison that first says how far each run got:
// a run that died at step 15 of 300 is not to be read as one that
// finished, however its final metrics look.
type RunComparison struct {
	Comparison
	// Progress is the rows "status" (StatusText: with the reason a run
	// stopped, failed or died, clipped as `ftune runs list` clips it) and
	// "steps" (the last completed step).
	Progress []Row
}

// CompareRuns is Compare with each run's status and steps.
func CompareRuns(dirs []string) (RunComparison, error) {
	c, err := Compare(dirs)
	if err != nil {
		return RunComparison{}, err
	}
	rc := RunComparison{Comparison: c}
	status := Row{Key: "status", Values: make([]string, len(dirs))}
	steps := Row{Key: "steps", Values: make([]string, len(dirs))}
	for i, dir := range dirs {
		s, err := Summarize(dir)
		if err != nil {
			return RunComparison{}, err
		}
		status.Values[i] = clip(s.StatusText(), listStatusWidth)
		steps.Values[i] = strconv.Itoa(s.Steps)
	}
	rc.Progress = []Row{status, steps}
	return rc, nil
}

// String is the comparison as a text table: the runs' progress, then the
// settings that differ and the final metrics as Comparison.String prints
// them, in one table so that the columns line up.
func (c RunComparison) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\t%s\n", strings.Join(c.Runs, "\t"))
	section := func(title string, rows []Row) {
		fmt.Fprintf(w, "%s\t%s\n", title, strings.Repeat("\t", max(len(c.Runs)-1, 0)))
		for _, r := range rows {
			fmt.Fprintf(w, "  %s\t%s\n", r.Key, strings.Join(r.Values, "\t"))
		}
	}
	if len(c.Progress) > 0 {
		section("run", c.Progress)
	}
	if len(c.Params) == 0 {
		fmt.Fprintln(w, "settings: identical")
	} else {
		section("settings that differ", c.Params)
	}
	section("final metrics", c.Metrics)
	w.Flush()
	return b.String()
}
