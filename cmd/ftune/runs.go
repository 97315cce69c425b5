package main

import (
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
	}
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
		Use:     "list",
		Short:   "One line per run: status, steps, final metrics",
		Example: "  ftune runs list --output /tmp/runs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			runs, err := track.List(root)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), track.FormatList(runs))
			// An unreadable run is listed, and its whole error (the
			// table clips it) is a warning: the other runs are still
			// listed, and the command succeeds while any run could be
			// read. Only when none could is it an error.
			bad := 0
			for _, r := range runs {
				if r.Status == track.StatusUnreadable {
					bad++
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: run %s is unreadable: %s\n", r.Dir, r.Reason)
				}
			}
			if bad > 0 && bad == len(runs) {
				return fmt.Errorf("no run under %s could be read (%d unreadable)", root, bad)
			}
			return nil
		},
	}
	show := &cobra.Command{
		Use:     "show RUN",
		Short:   "Configuration, environment, versions and final metrics of one run",
		Example: "  ftune runs show 20261126-114016",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := track.Show(dirOf(args[0]))
			if err != nil {
				return err
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
		Short: "Settings that differ and final metrics side by side (and an overlaid loss plot with --plot)",
		Example: `  ftune runs compare run-a run-b
  ftune runs compare run-a run-b --plot loss   # writes loss.png and loss.svg`,
		Long: `Settings that differ and final metrics side by side. With --plot NAME the
overlaid loss curves are written to NAME.png and NAME.svg (or only the
format NAME ends in). A plot ftune wrote earlier is replaced; any other
file there is refused, or with --force moved aside (kept, not deleted).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dirs := make([]string, len(args))
			for i, a := range args {
				dirs[i] = dirOf(a)
			}
			c, err := track.Compare(dirs)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), c.String())
			if plot != "" {
				files, err := report.WriteLossPlot(dirs, plot, force)
				// Named as written (--plot x.png writes x.png only), and
				// before any error: what was written stays written.
				var names []string
				for _, f := range files {
					names = append(names, f.Path)
					if f.Kept != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "note: the file that was at %s (not written by ftune) is kept at %s\n", f.Path, f.Kept)
					}
				}
				if len(names) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "loss curves: %s\n", strings.Join(names, ", "))
				}
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	compare.Flags().StringVar(&plot, "plot", "", "write the overlaid loss curves to this path (.png and .svg)")
	compare.Flags().BoolVar(&force, "force", false, "with --plot, replace a file ftune did not write: it is moved aside, not deleted")
	report := &cobra.Command{
		Use:     "report RUN",
		Short:   "Write the run's report.html (plots, configuration, final metrics)",
		Example: "  ftune runs report 20261126-114016",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirOf(args[0])
			if err := report.HTMLReport(dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", filepath.Join(dir, track.ReportFile))
			return nil
		},
	}
	cmd.AddCommand(list, show, compare, report)
	return cmd
}

// writeReport writes a closed run's report.html (after recipe.Run returned:
// the report reads the status the run ended with) and prints where it is.
// The run's outcome does not depend on it: a failure is a warning.
func writeReport(w io.Writer, runDir string) {
	if err := report.HTMLReport(runDir); err != nil {
		fmt.Fprintf(w, "warning: report: %v\n", err)
		return
	}
	fmt.Fprintf(w, "report:     %s\n", filepath.Join(runDir, track.ReportFile))
}
