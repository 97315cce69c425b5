package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftune/ftune/track"
	"github.com/ftune/ftune/track/report"
)

func newRunsCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List, show and compare training runs; plot their loss curves",
		Example: `  ftune runs list                              # the runs under ./runs: status, steps, final metrics
  ftune runs show 20261126-114016              # one run: status, settings, final metrics
  ftune runs compare run-a run-b --plot loss   # side by side, and loss.png, loss.svg
  ftune runs report 20261126-114016            # the run's report.html
  ftune runs list --output /data/runs --json   # another folder of runs, as JSON`,
	}
	var asJSON bool
	cmd.PersistentFlags().StringVar(&root, "output", "runs", "folder of run folders")
	// A run is named by its path, or by its folder's name under --output;
	// a path (absolute, with a separator, . or ..) is never looked up there.
	// A bare name is the folder under --output when that exists, even if
	// the working directory holds a folder of that name too (it opened
	// ./NAME then, another run or no run at all); a folder in the working
	// directory is the fallback, for a command run inside --output.
	dirOf := func(name string) string {
		if filepath.IsAbs(name) || strings.ContainsRune(name, filepath.Separator) || name == "." || name == ".." {
			return name
		}
		under := filepath.Join(root, name)
		if st, err := os.Stat(under); err == nil && st.IsDir() {
			return under
		}
		if st, err := os.Stat(name); err == nil && st.IsDir() {
			return name
		}
		return under
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "One line per run: status, steps, final metrics",
		Example: `  ftune runs list --output /tmp/runs
  ftune runs list --json           # {"root": ..., "runs": [{"name", "folder", "status", "reason", "steps", "final_metrics", ...}]}`,
		Long: `One line per run under --output, oldest first: status, start, steps, the
last train/loss and val/loss, and the versions kept. A run whose summary
cannot be read is listed as unreadable; one whose metrics.jsonl or
samples.jsonl holds a line that does not read, as damaged, naming the
file and line. Either's whole error is a warning on stderr.

--json prints one JSON document instead: the folder (root) and each run's
name, folder, status and reason (why it stopped, or what is unreadable or
damaged), started and ended times, steps, kept_versions and every final
metric (final_metrics, by the names metrics.jsonl logs them); what a run's
status makes unknown is null.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			runs, err := track.List(root)
			if err != nil {
				return err
			}
			// A run whose summary reads but whose metrics or samples
			// do not is marked damaged, as runs show and runs report
			// say it is (they read every line).
			var damaged []error
			for i, r := range runs {
				if r.Status == track.StatusUnreadable {
					continue
				}
				if status, err := runFault(r.Dir); status == statusDamaged {
					runs[i].Status, runs[i].Reason = statusDamaged, strings.TrimPrefix(err.Error(), r.Dir+string(filepath.Separator))
					damaged = append(damaged, fmt.Errorf("run %s is %s: %w", r.Dir, status, err))
				}
			}
			if asJSON {
				doc := runsListJSON{Root: root, Runs: make([]runJSON, len(runs))}
				for i, r := range runs {
					doc.Runs[i] = runOf(r)
				}
				if err := writeJSON(cmd.OutOrStdout(), doc); err != nil {
					return err
				}
			} else {
				fmt.Fprint(cmd.OutOrStdout(), track.FormatList(runs))
			}
			// An unreadable or damaged run is listed, and its whole
			// error (the table clips it) is a warning: the other runs
			// are still listed, and the command succeeds while any run
			// could be read. Only when none could is it an error.
			bad := 0
			for _, r := range runs {
				if r.Status == track.StatusUnreadable {
					bad++
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: run %s is unreadable: %s\n", r.Dir, r.Reason)
				}
			}
			for _, err := range damaged {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
			}
			if bad > 0 && bad == len(runs) {
				return fmt.Errorf("no run under %s could be read (%d unreadable)", root, bad)
			}
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show RUN",
		Short: "Configuration, environment, versions and final metrics of one run",
		Example: `  ftune runs show 20261126-114016
  ftune runs show 20261126-114016 --json   # adapters, versions, final_metrics, config, ...`,
		Long: `Configuration, environment, versions and final metrics of one run. A run
that runs list marks unreadable or damaged is refused, naming the file and
line (exit 1).

--json prints one JSON document instead: what runs list --json says of the
run, with the machine it ran on, its adapters (the folders it exported),
its versions (kind, path, step, time, files with their SHA-256, metrics,
removed) and its config.yaml as text; what the run lacks is null.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirOf(args[0])
			if err := checkRun(dir); err != nil {
				return err
			}
			d, err := track.Show(dir)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), showOf(d))
			}
			fmt.Fprint(cmd.OutOrStdout(), d.String())
			return nil
		},
	}
	var (
		plot  string
		force bool
	)
	compare := &cobra.Command{
		Use:   "compare RUN RUN...",
		Short: "Status, steps, settings that differ and final metrics side by side (and an overlaid loss plot with --plot)",
		Example: `  ftune runs compare run-a run-b
  ftune runs compare run-a run-b --plot loss       # writes loss.png and loss.svg
  ftune runs compare run-a run-b --plot loss.svg   # writes loss.svg only
  ftune runs compare run-a run-b --json            # {"runs": [...], "settings_that_differ": [{"key", "values"}], ...}`,
		Long: `Each run's status (with the reason it stopped, failed or died) and steps,
the settings that differ and the final metrics side by side. With --plot
NAME the overlaid loss curves are written to NAME.png and NAME.svg, or to
NAME alone when it ends in .png or .svg (another extension is refused). A
run that logged no loss is left out of the plot with a warning naming it.
A plot ftune wrote earlier is replaced; any other file there is refused,
or with --force moved aside (kept, not deleted).

--json prints one JSON document instead: each run as runs list --json
has it (status, steps, final_metrics, ...), the settings that differ
(settings_that_differ: key and one value a run, null where a run's
config.yaml lacks the key) and the files --plot wrote (plot_files, null
without --plot).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if plot != "" {
				// Before any output: a name that cannot be written is
				// bad usage, not a failure after the table.
				if _, err := report.PlotPaths(plot); err != nil {
					return usageError{fmt.Errorf("--plot %w", err)}
				}
			} else if force {
				return usageError{errors.New("--force is for --plot (a file in the plot's way is moved aside)")}
			}
			dirs := make([]string, len(args))
			for i, a := range args {
				dirs[i] = dirOf(a)
				if err := checkRun(dirs[i]); err != nil {
					return err
				}
			}
			c, err := track.CompareRuns(dirs)
			if err != nil {
				return err
			}
			// With --json the table's place is the document, written
			// after the plot so that it names the files; notes go to
			// stderr, where they do not break it.
			notes := cmd.OutOrStdout()
			if asJSON {
				notes = cmd.ErrOrStderr()
			} else {
				fmt.Fprint(cmd.OutOrStdout(), c.String())
			}
			var plotted []string
			var plotErr error
			if plot != "" {
				var res report.LossPlot
				res, plotErr = report.WriteLossPlot(dirs, plot, force)
				for _, d := range res.NoLoss {
					if errors.Is(plotErr, report.ErrNoData) {
						break // the error says it of every run
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: run %s logged no train/loss or val/loss: it is not in the plot\n", d)
				}
				// Named as written (--plot x.png writes x.png only), and
				// before any error: what was written stays written.
				plotted = []string{}
				for _, f := range res.Files {
					plotted = append(plotted, f.Path)
					if f.Kept != "" {
						fmt.Fprintf(notes, "note: the file that was at %s (not written by ftune) is kept at %s\n", f.Path, f.Kept)
					}
				}
				if len(plotted) > 0 && !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "loss curves: %s\n", strings.Join(plotted, ", "))
				}
			}
			if asJSON {
				runs := make([]track.RunSummary, len(dirs))
				for i, d := range dirs {
					if runs[i], err = track.Summarize(d); err != nil {
						return err
					}
				}
				doc := compareOf(runs, c)
				doc.PlotFiles = plotted
				if err := writeJSON(cmd.OutOrStdout(), doc); err != nil {
					return err
				}
			}
			return plotErr
		},
	}
	compare.Flags().StringVar(&plot, "plot", "", "write the overlaid loss curves to NAME.png and NAME.svg (NAME.png or NAME.svg: that file only)")
	compare.Flags().BoolVar(&force, "force", false, "with --plot, replace a file ftune did not write: it is moved aside, not deleted")
	var forceReport bool
	report := &cobra.Command{
		Use:   "report RUN",
		Short: "Write the run's report.html (plots, configuration, final metrics)",
		Example: `  ftune runs report 20261126-114016
  ftune runs report 20261126-114016 --force   # a report.html of yours there is moved aside`,
		Long: `Write the run's report.html. A report ftune wrote is replaced; a
report.html ftune did not write is refused, or with --force moved aside
(report.html.replaced-<time>, kept, not deleted).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirOf(args[0])
			if err := checkRun(dir); err != nil {
				return err
			}
			kept, err := report.WriteHTMLReport(dir, forceReport)
			if err != nil {
				return err
			}
			path := filepath.Join(dir, track.ReportFile)
			if kept != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "note: the file that was at %s (not written by ftune) is kept at %s\n", path, kept)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", path)
			return nil
		},
	}
	report.Flags().BoolVar(&forceReport, "force", false, "replace a report.html ftune did not write: it is moved aside, not deleted")
	addJSONFlag(list, &asJSON)
	addJSONFlag(show, &asJSON)
	addJSONFlag(compare, &asJSON)
	cmd.AddCommand(list, show, compare, report)
	return cmd
}

// writeReport writes a closed run's report.html (after recipe.Run returned:
// the report reads the status the run ended with) and prints where it is.
// The run's outcome does not depend on it: a failure is a warning.
// A report.html of the user's in the run folder is kept: the warning
// says how to write the report anyway.
func writeReport(w io.Writer, runDir string) {
	if err := report.HTMLReport(runDir); err != nil {
		if errors.Is(err, report.ErrNotOurs) {
			fmt.Fprintf(w, "warning: report not written: %s holds a report.html ftune did not write (ftune runs report %s --force moves it aside)\n", runDir, runDir)
			return
		}
		fmt.Fprintf(w, "warning: report: %v\n", err)
		return
	}
	fmt.Fprintf(w, "report:     %s\n", filepath.Join(runDir, track.ReportFile))
}

// statusDamaged is the list's status of a run whose summary reads but a
// line of whose metrics.jsonl or samples.jsonl does not.
const statusDamaged = "damaged"

// runFault is what keeps runs show and runs report from reading the run
// folder dir whole, in the words runs list uses: track.StatusUnreadable
// when its summary cannot be read (summary.json, or a running run's
// metrics.jsonl), statusDamaged when it can but a line of metrics.jsonl
// or samples.jsonl cannot. The error names the file and line. "" and nil
// when nothing does, or when dir is no run folder (track.Show says so).
func runFault(dir string) (status string, err error) {
	if !track.IsRun(dir) {
		return "", nil
	}
	if _, err := track.Summarize(dir); err != nil {
		return track.StatusUnreadable, err
	}
	if _, err := track.ReadMetrics(filepath.Join(dir, track.MetricsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return statusDamaged, err
	}
	if _, err := track.ReadSamples(filepath.Join(dir, track.SamplesFile)); err != nil {
		return statusDamaged, err
	}
	return "", nil
}

// checkRun refuses a run folder runFault finds at fault, as runs list
// words it.
func checkRun(dir string) error {
	if status, err := runFault(dir); err != nil {
		return fmt.Errorf("run %s is %s: %w", dir, status, err)
	}
	return nil
}
